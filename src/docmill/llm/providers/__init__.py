"""The providers: ``anthropic`` (Claude through the SDK), ``openai`` (OpenAI-compatible
servers through httpx) and ``extractive`` (offline, no model)."""
