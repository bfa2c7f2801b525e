"""Operation pages: the list, one operation with its live log, cancel."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
