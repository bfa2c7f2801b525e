"""The vms pages."""

from . import snapshots  # noqa: F401  (its routes join the blueprint)
from .routes import bp  # noqa: F401  (the blueprint, with its routes)
