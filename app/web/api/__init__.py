"""Small JSON endpoints the dashboard polls to update pages in place."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from . import routes  # noqa: E402,F401  (routes attach themselves to bp)
