"""Orders: the reference system of record (orders, shipments, fraud, refunds, tickets)."""
