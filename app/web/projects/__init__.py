"""Projects: their quotas and usage for everyone who may see them; changes for admins."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
