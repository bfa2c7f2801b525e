"""User management and the audit log (admins only)."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
