"""Settings read from the environment; bad values fail at start, not at first use."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import grpc

from runtime import mesh
from runtime.deadlines import DeadlinePolicy


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


def env_str(name: str, default: str) -> str:
    """A string variable."""
    return os.environ.get(name, default)


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """An integer variable, checked against a lower bound."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={value} is below the minimum {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """A non-negative float variable."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} is below the minimum {minimum}")
    return value


def _share(name: str, default: float) -> float:
    """A fraction between 0 and 1."""
    value = env_float(name, default)
    if value > 1:
        raise SettingsError(f"{name}={value} is above 1 (a share of calls)")
    return value


def env_bool(name: str, default: bool) -> bool:
    """A boolean variable: 1/true/yes or 0/false/no."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean")


@dataclass(frozen=True, slots=True)
class FaultInjection:
    """Chaos knobs for tests and drills; off unless set.

    A matching call (its method in ``methods``, picked with probability ``rate``, and,
    with ``once_file``, only the first one across every process sharing that file) is
    delayed, then failed with ``status``, then, with ``exit``, ends the process without
    a reply. ``after`` moves all of it behind the handler: what the handler wrote stays
    written and its reply is delayed, replaced by the status (a dropped reply) or never
    sent (a crash between the write and the reply).
    """

    delay_ms: int = 0
    """Delay added before matching handlers run (after them with ``after``)."""
    methods: tuple[str, ...] = ()
    """Method names (``GetShipment``) the faults apply to; empty means none."""
    status: str = ""
    """A gRPC code name (``RESOURCE_EXHAUSTED``) matching calls fail with, after the delay;
    empty means none."""
    retry_after_s: float | None = None
    """RetryInfo delay attached to the injected status."""
    after: bool = False
    """Apply the faults once the handler has run, instead of before it."""
    exit: bool = False
    """End the process (exit status 75, no reply) at the fault."""
    rate: float = 1.0
    """Share of matching calls that get the faults."""
    once_file: str = ""
    """When set, only the first matching call gets the faults: it creates this file, and a
    call that finds it (in this process or another) goes through."""

    @classmethod
    def from_env(cls) -> FaultInjection:
        """Read ``WAYBILL_FAULT_DELAY_MS``, ``_METHODS``, ``_STATUS``, ``_RETRY_AFTER_S``,
        ``_AFTER``, ``_EXIT``, ``_RATE`` and ``_ONCE_FILE``."""
        methods = tuple(m for m in env_str("WAYBILL_FAULT_METHODS", "").split(",") if m)
        status = env_str("WAYBILL_FAULT_STATUS", "").strip().upper()
        if status and (status == "OK" or status not in grpc.StatusCode.__members__):
            raise SettingsError(f"WAYBILL_FAULT_STATUS={status!r} is not a failing gRPC code")
        retry = env_float("WAYBILL_FAULT_RETRY_AFTER_S", -1.0, minimum=-1.0)
        rate = env_float("WAYBILL_FAULT_RATE", 1.0, minimum=0.0)
        if rate > 1.0:
            raise SettingsError(f"WAYBILL_FAULT_RATE={rate} is not in 0..1")
        return cls(
            delay_ms=env_int("WAYBILL_FAULT_DELAY_MS", 0, minimum=0),
            methods=methods,
            status=status,
            retry_after_s=retry if retry >= 0 else None,
            after=env_bool("WAYBILL_FAULT_AFTER", False),
            exit=env_bool("WAYBILL_FAULT_EXIT", False),
            rate=rate,
            once_file=env_str("WAYBILL_FAULT_ONCE_FILE", ""),
        )

    @property
    def active(self) -> bool:
        """Whether any fault is set up."""
        return bool(self.methods and (self.delay_ms or self.status or self.exit))

    def fires(self, method: str) -> bool:
        """Whether this call of ``/pkg.Service/Method`` gets the faults (draws ``rate`` and
        claims ``once_file``)."""
        if not self.active or method.rsplit("/", 1)[-1] not in self.methods:
            return False
        if self.rate < 1.0 and random.random() >= self.rate:
            return False
        if self.once_file:
            try:
                os.close(os.open(self.once_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return False
        return True

    def code(self) -> grpc.StatusCode | None:
        """The code a call that gets the faults fails with, if any."""
        return grpc.StatusCode[self.status] if self.status else None


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What every service reads at start."""

    name: str
    """Service name from the mesh table."""
    address: str
    """``host:port`` to listen on."""
    log_level: str = "INFO"
    """Root log level."""
    grace_s: float = 5.0
    """Seconds in-flight calls get to finish after SIGTERM."""
    drain_s: float = 0.2
    """Seconds health reports NOT_SERVING before the server stops accepting calls."""
    deadline_margin_s: float = 0.005
    """Time kept back from the remaining deadline when calling downstream."""
    deadline_min_s: float = 0.002
    """Below this remaining time a downstream call fails fast with DEADLINE_EXCEEDED."""
    default_call_timeout_s: float = 10.0
    """Deadline for outgoing calls when the inbound call had none."""
    metrics_port: int = 0
    """Prometheus exposition port; 0 disables it."""
    metrics_host: str = "127.0.0.1"
    """Address the metrics endpoint binds (``WAYBILL_METRICS_HOST``; 0.0.0.0 in a pod)."""
    access_log: bool = True
    """Log one JSON line per RPC (metadata only, never content)."""
    access_log_sample: float = 1.0
    """Share of successful RPCs logged (``WAYBILL_ACCESS_LOG_SAMPLE``, 0..1), chosen by trace
    so a sampled turn is logged at every hop; failed ones are always logged."""
    faults: FaultInjection = field(default_factory=FaultInjection)
    """Chaos knobs."""

    @classmethod
    def from_env(cls, name: str) -> ServiceSettings:
        """Settings of service ``name`` from ``WAYBILL_*`` variables."""
        address = mesh.spec(name).address()
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise SettingsError(f"{mesh.spec(name).env_var}={address!r} is not host:port")
        level = env_str("WAYBILL_LOG_LEVEL", "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(f"WAYBILL_LOG_LEVEL={level!r} is not DEBUG/INFO/WARNING/ERROR")
        return cls(
            name=name,
            address=address,
            log_level=level,
            grace_s=env_float("WAYBILL_GRACE_S", 5.0),
            drain_s=env_float("WAYBILL_DRAIN_S", 0.2),
            deadline_margin_s=env_float("WAYBILL_DEADLINE_MARGIN_MS", 5.0) / 1000,
            deadline_min_s=env_float("WAYBILL_DEADLINE_MIN_MS", 2.0) / 1000,
            default_call_timeout_s=env_float("WAYBILL_DEFAULT_CALL_TIMEOUT_S", 10.0, minimum=0.01),
            metrics_port=env_int(f"WAYBILL_{name.upper()}_METRICS_PORT", 0, minimum=0),
            metrics_host=env_str("WAYBILL_METRICS_HOST", "127.0.0.1"),
            access_log=env_bool("WAYBILL_ACCESS_LOG", True),
            access_log_sample=_share("WAYBILL_ACCESS_LOG_SAMPLE", 1.0),
            faults=FaultInjection.from_env(),
        )

    def deadline_policy(self) -> DeadlinePolicy:
        """How this service derives the timeouts of its outgoing calls."""
        return DeadlinePolicy(
            margin_s=self.deadline_margin_s,
            min_s=self.deadline_min_s,
            default_s=self.default_call_timeout_s,
        )
