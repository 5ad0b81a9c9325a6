"""The supervisor router: intent classification and worker choice."""
