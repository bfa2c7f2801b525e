"""Routes of the main blueprint."""

from flask import Blueprint, render_template

from ...services import overview as overview_service

bp = Blueprint("main", __name__)


@bp.route("/")
def overview():
    """Hosts and VMs by state, cluster totals, recent operations and controller failures."""
    return render_template("main/overview.html", summary=overview_service.summary())
