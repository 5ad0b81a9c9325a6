"""The tracking worker: read-only shipment status, ETA and delivery photo."""
