"""Providers: the only code that knows HTTP paths and JSON shapes (see ``base``)."""
