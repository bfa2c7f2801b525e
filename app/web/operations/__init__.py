"""Operation pages: the list, one operation with its live log, cancel."""

from flask import Blueprint

bp = Blueprint("operations", __name__, url_prefix="/operations")

from . import filters, routes  # noqa: E402,F401  (they attach themselves to bp)
