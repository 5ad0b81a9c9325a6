"""Ledger metrics (Prometheus), exposed with the process's other metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BUDGET_USED = Gauge(
    "waybill_ledger_budget_used_ratio",
    "Money spent this month over the team's monthly limit (the soft alert is at 0.8).",
    ["tenant", "team"],
)
BUDGET_STATE = Gauge(
    "waybill_ledger_budget_state",
    "The team's budget state this month: 1 OK, 2 SOFT_LIMIT (80% spent), 3 HARD_LIMIT.",
    ["tenant", "team"],
)
RESERVATIONS = Counter(
    "waybill_ledger_reservations_total",
    "Reserve outcomes: held, replayed (a retry), refused (over the budget).",
    ["outcome"],
)
SETTLED = Counter(
    "waybill_ledger_settled_total",
    "Reservations settled, by how: committed, released, expired (swept or found expired),"
    " late_commit (a commit after the expiry, refused).",
    ["how"],
)
CHARGED = Counter(
    "waybill_ledger_charged_micro_units_total",
    "Micro units charged to budgets.",
    ["tenant", "team"],
)
OVERRUNS = Counter(
    "waybill_ledger_overrun_commits_total",
    "Commits whose priced usage was above their reservation (charged the reservation).",
    ["tenant", "team"],
)
OVERRUN_MICROS = Counter(
    "waybill_ledger_overrun_micro_units_total",
    "Micro units priced above reservations and not charged.",
    ["tenant", "team"],
)
UNPRICED = Counter(
    "waybill_ledger_unpriced_generations_total",
    "Committed generations whose backend/model has no price (charged 0).",
)
OPERATIONS = Counter(
    "waybill_ledger_operations_total",
    "Reserve, Commit and Release operations sent on Exchange streams, by operation and"
    " status code (the unary methods are counted by the RPC metrics).",
    ["operation", "code"],
)
OPERATION_SECONDS = Histogram(
    "waybill_ledger_operation_seconds",
    "Time from an Exchange operation's arrival to its result, durable write included.",
    ["operation"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
