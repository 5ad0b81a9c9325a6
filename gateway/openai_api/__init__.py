"""The OpenAI-compatible model API the gateway serves beside its gRPC API (docs/model-api.md)."""
