"""Probing an HTTP process (the REST edge) the way cli.probe probes gRPC ones."""

from __future__ import annotations

import contextlib
import http.client
import json

from cli.probe import SERVING


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def check_http(address: str, path: str, timeout_s: float) -> str:
    """``SERVING`` when ``GET path`` answers 200, else ``NOT_SERVING (<status>)`` or
    ``UNREACHABLE: <why>``. Never raises for a dead or slow process."""
    host, port = _host_port(address)
    connection = http.client.HTTPConnection(host, port, timeout=max(timeout_s, 0.01))
    try:
        connection.request("GET", path, headers={"accept": "application/json"})
        response = connection.getresponse()
        body = response.read(64 * 1024)
    except (OSError, http.client.HTTPException) as exc:
        return f"UNREACHABLE: {type(exc).__name__}"
    finally:
        connection.close()
    if response.status == 200:
        return SERVING
    detail = ""
    with contextlib.suppress(ValueError, AttributeError):
        detail = str(json.loads(body).get("gateway", ""))
    return f"NOT_SERVING ({response.status}{', gateway ' + detail if detail else ''})"
