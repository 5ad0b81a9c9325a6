"""Where a worker finds the services it calls: the mesh table, checked at start."""

from __future__ import annotations

from runtime import mesh
from runtime.settings import SettingsError


def peer_address(name: str) -> str:
    """``host:port`` of service ``name``; SettingsError naming its variable if malformed."""
    spec = mesh.spec(name)
    address = spec.address()
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SettingsError(f"{spec.env_var}={address!r} is not host:port")
    return address
