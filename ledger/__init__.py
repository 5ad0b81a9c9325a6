"""Ledger: prices, budgets, reservations and cost reports (contract served; not built yet)."""
