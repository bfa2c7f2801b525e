"""The console pages: open a VM's screen in the browser (noVNC through `python -m app.console`)."""

from flask import Blueprint

bp = Blueprint("console", __name__)

from . import routes  # noqa: E402,F401  (routes attach themselves to bp)
