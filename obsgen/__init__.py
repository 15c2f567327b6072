"""obsgen: one selftest observability spec compiled into every artifact."""

__version__ = "0.14.0"
