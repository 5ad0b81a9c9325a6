"""The demo client companies of the embedded default (synthetic; the fleet configures its own)."""

from __future__ import annotations

DEMO_TENANTS: tuple[str, ...] = ("acme-retail", "globex-home")
"""Tenant ids of the two demo clients, in the order demo data is generated."""
