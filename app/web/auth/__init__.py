"""Login, logout and one's own password."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
