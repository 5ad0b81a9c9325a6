"""Reports read from the Parquet exports of the ledger and the audit log."""
