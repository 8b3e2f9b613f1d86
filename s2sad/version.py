"""s2sad's version (the disk cache keys generated code by it)."""

__version__ = "0.1.0"
