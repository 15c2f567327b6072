"""obsgen: one selftest observability spec compiled into every artifact."""

__version__ = "0.13.0"
