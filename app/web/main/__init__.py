"""The overview page."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
