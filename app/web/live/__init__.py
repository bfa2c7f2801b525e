"""Small JSON endpoints the dashboard polls to update pages in place."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
