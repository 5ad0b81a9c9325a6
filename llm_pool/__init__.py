"""The LLM pool: one async streaming interface over every generation backend."""
