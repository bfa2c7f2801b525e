"""The networks pages."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
