"""The vms pages."""

from flask import Blueprint

bp = Blueprint("vms", __name__, url_prefix="/vms")

from . import routes  # noqa: E402,F401  (routes attach themselves to bp)
