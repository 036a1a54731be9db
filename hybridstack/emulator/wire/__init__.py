"""The three wire formats the emulator speaks: OpenAI chat completions, Anthropic
messages and DashScope native generation, over one protocol-neutral request/reply."""
