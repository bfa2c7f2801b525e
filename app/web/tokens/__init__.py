"""API tokens: every user's own (admins see and revoke everyone's)."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
