"""Retrieval: per-tenant policy knowledge base (contract served; implementation pending)."""
