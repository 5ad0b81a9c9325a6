"""The negotiation worker (contract served; implementation pending)."""
