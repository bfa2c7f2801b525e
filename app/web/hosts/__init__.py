"""Host pages: list, detail, add, edit, remove."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
