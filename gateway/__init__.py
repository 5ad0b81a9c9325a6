"""The gateway: the conversation's front door and orchestrator."""
