"""Guardrails: PII redaction, prompt-injection scoring, output checks."""
