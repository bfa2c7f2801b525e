"""Host pages: list, detail, add, edit, remove."""

from flask import Blueprint

bp = Blueprint("hosts", __name__, url_prefix="/hosts")

from . import routes  # noqa: E402,F401  (routes attach themselves to bp)
