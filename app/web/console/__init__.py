"""The console pages: open a VM's screen in the browser (noVNC through `python -m app.console`)."""

from .routes import bp  # noqa: F401  (the blueprint, with its routes)
