"""The policy worker (contract served; implementation pending)."""
