"""Algolia: API keys with ACLs (``schema`` is I/O-free; ``api`` talks HTTP)."""
