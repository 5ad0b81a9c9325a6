"""The edge's settings, read from the environment; bad values fail at start."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from gateway.edge.deadline import MIN_TIMEOUT_S
from runtime import mesh
from runtime.settings import SettingsError, env_bool, env_float, env_int, env_str

DEMO_CREDENTIALS_ENV = "WAYBILL_EDGE_DEMO_CREDENTIALS"
"""Set only by the launcher of the embedded default: see docs/rest-edge.md."""
DEMO_SIGNING_KEY_ENV = "WAYBILL_EDGE_DEMO_SIGNING_KEY"
"""Set only by the launcher of the embedded default: the demo token private key."""
OPS_METRICS_ENV = "WAYBILL_EDGE_OPS_METRICS"
"""Set by the launcher of the embedded default: ``name=host:port,...``, the services'
metrics endpoints the ops page reads (docs/rest-edge.md, "The ops page")."""
OPS_TENANTS_ENV = "WAYBILL_EDGE_OPS_TENANTS"
"""The tenants whose costs the ops page reports (comma-separated)."""
_TENANT = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def split_address(address: str, *, variable: str) -> tuple[str, int]:
    """``host:port`` (IPv6 hosts in brackets) as a host and a port number."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"{variable}={address!r} is not host:port")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """What the edge reads at start."""

    host: str
    """Interface to listen on."""
    port: int
    """Port to listen on (0: any free port)."""
    gateway: str
    """The gateway's ``host:port``."""
    default_timeout_s: float = 30.0
    """Deadline of a call whose request carries no ``X-Request-Timeout``."""
    max_timeout_s: float = 120.0
    """Larger ``X-Request-Timeout`` values are lowered to this."""
    deadline_margin_s: float = 0.005
    """Kept back from the caller's timeout so the edge can still answer after the gateway."""
    max_body_bytes: int = 64 * 1024
    """Request bodies above this are refused with 413 (a message is at most 4000 characters)."""
    demo_credentials: Path | None = None
    """Credentials file whose keys stand in for callers that send none (embedded demo only)."""
    demo_signing_key: Path | None = None
    """Private key that signs demo end-user tokens (embedded demo only)."""
    demo_issuer: str = ""
    """``iss`` of demo tokens (``WAYBILL_JWT_ISSUER``, as the gateway checks it)."""
    demo_audience: str = ""
    """``aud`` of demo tokens (``WAYBILL_JWT_AUDIENCE``)."""
    log_level: str = "INFO"
    """Root log level."""
    grace_s: float = 5.0
    """Seconds open requests get to finish after SIGTERM."""
    access_log: bool = True
    """Log one JSON line per HTTP request (route template, status, duration; never content)."""
    ops_metrics: tuple[tuple[str, str], ...] = ()
    """(service name, ``host:port``) of each metrics endpoint the ops page reads; empty: no
    ops page (embedded default only)."""
    ops_ledger: str = ""
    """The ledger's ``host:port``, for the ops page's cost report."""
    ops_tenants: tuple[str, ...] = ()
    """Tenants whose costs the ops page reports."""

    def __post_init__(self) -> None:
        for variable, value in (
            (DEMO_CREDENTIALS_ENV, self.demo_credentials),
            (DEMO_SIGNING_KEY_ENV, self.demo_signing_key),
        ):
            if value is not None and not is_loopback(self.host):
                # Demo credentials and tokens let anyone who reaches the edge act for a
                # tenant: only ever on a loopback interface, whatever was configured.
                raise SettingsError(
                    f"{variable} is set but the edge listens on {self.host!r};"
                    " demo credentials are only allowed on a loopback address"
                )
        if self.ops_metrics:
            if not is_loopback(self.host):
                # Costs, rates and latencies of every tenant: for this machine only.
                raise SettingsError(
                    f"{OPS_METRICS_ENV} is set but the edge listens on {self.host!r};"
                    " the ops page is only served on a loopback address"
                )
            if not self.ops_ledger or not self.ops_tenants:
                raise SettingsError(
                    f"{OPS_METRICS_ENV} needs the ledger's address and {OPS_TENANTS_ENV}"
                )
        for tenant in self.ops_tenants:
            if not _TENANT.match(tenant):
                raise SettingsError(
                    f"{OPS_TENANTS_ENV}: {tenant!r} is not a tenant id (^[a-z][a-z0-9-]{{1,31}}$)"
                )
        if self.demo_signing_key is not None and not (self.demo_issuer and self.demo_audience):
            raise SettingsError(
                f"{DEMO_SIGNING_KEY_ENV} needs WAYBILL_JWT_ISSUER and WAYBILL_JWT_AUDIENCE"
            )
        if not self.deadline_margin_s < MIN_TIMEOUT_S <= self.max_timeout_s:
            # Every accepted X-Request-Timeout must leave the gateway some time.
            raise SettingsError(
                f"the deadline margin ({self.deadline_margin_s}s) must be below the shortest"
                f" accepted timeout ({MIN_TIMEOUT_S}s), and the maximum timeout"
                f" ({self.max_timeout_s}s) not below it"
            )
        if self.default_timeout_s > self.max_timeout_s:
            raise SettingsError(
                f"default timeout {self.default_timeout_s}s is above the maximum"
                f" {self.max_timeout_s}s"
            )

    @property
    def ops_enabled(self) -> bool:
        """Whether this edge serves the ops page."""
        return bool(self.ops_metrics)

    @property
    def address(self) -> str:
        """``host:port`` as configured."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_env(cls) -> EdgeSettings:
        """Settings from ``WAYBILL_*`` variables."""
        host, port = split_address(mesh.EDGE.address(), variable=mesh.EDGE.env_var)
        gateway = mesh.spec("gateway")
        split_address(gateway.address(), variable=gateway.env_var)
        level = env_str("WAYBILL_LOG_LEVEL", "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(f"WAYBILL_LOG_LEVEL={level!r} is not DEBUG/INFO/WARNING/ERROR")
        demo = env_str(DEMO_CREDENTIALS_ENV, "")
        signing_key = env_str(DEMO_SIGNING_KEY_ENV, "")
        ops_metrics = parse_ops_metrics(env_str(OPS_METRICS_ENV, ""))
        ledger = mesh.spec("ledger")
        if ops_metrics:
            split_address(ledger.address(), variable=ledger.env_var)
        return cls(
            host=host,
            port=port,
            gateway=gateway.address(),
            default_timeout_s=env_float("WAYBILL_EDGE_DEFAULT_TIMEOUT_S", 30.0, minimum=0.01),
            max_timeout_s=env_float("WAYBILL_EDGE_MAX_TIMEOUT_S", 120.0, minimum=0.01),
            deadline_margin_s=env_float("WAYBILL_DEADLINE_MARGIN_MS", 5.0) / 1000,
            max_body_bytes=env_int("WAYBILL_EDGE_MAX_BODY_BYTES", 64 * 1024, minimum=1024),
            demo_credentials=Path(demo) if demo else None,
            demo_signing_key=Path(signing_key) if signing_key else None,
            demo_issuer=env_str("WAYBILL_JWT_ISSUER", ""),
            demo_audience=env_str("WAYBILL_JWT_AUDIENCE", ""),
            log_level=level,
            grace_s=env_float("WAYBILL_GRACE_S", 5.0),
            access_log=env_bool("WAYBILL_ACCESS_LOG", True),
            ops_metrics=ops_metrics,
            ops_ledger=ledger.address() if ops_metrics else "",
            ops_tenants=tuple(t for t in env_str(OPS_TENANTS_ENV, "").split(",") if t),
        )


def parse_ops_metrics(text: str) -> tuple[tuple[str, str], ...]:
    """``name=host:port,...`` as (name, address) pairs; SettingsError naming a bad entry."""
    found: list[tuple[str, str]] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, address = entry.partition("=")
        if not sep or not _SOURCE_NAME.match(name):
            raise SettingsError(f"{OPS_METRICS_ENV}: {entry!r} is not name=host:port")
        split_address(address, variable=OPS_METRICS_ENV)
        if name in dict(found):
            raise SettingsError(f"{OPS_METRICS_ENV}: {name!r} is named twice")
        found.append((name, address))
    return tuple(found)
