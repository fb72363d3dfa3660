"""Coveo: API keys with privileges (``schema`` is I/O-free; ``api`` talks HTTP)."""
