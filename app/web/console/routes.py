"""Routes of the console blueprint."""

from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ...errors import NotFound, NubeError
from ...services import console, vms
from ...services.console import ConsoleRefused
from ..helpers import actor, flash_error

bp = Blueprint("console", __name__)


NOVNC_MODULE = Path("node_modules/@novnc/novnc/core/rfb.js")  # under static/

# The dashboard's policy, but with the console proxy's origin (and only it) as a place to
# connect: other pages keep `connect-src 'self'`.
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
    " connect-src 'self' {ws_origins}; frame-ancestors 'none'"
)


def proxy_origins():
    """The websocket origins of the console proxy as this browser reaches the dashboard."""
    hostname = urlsplit(f"//{request.host}").hostname or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    port = current_app.config["CONSOLE_PORT"]
    return f"ws://{hostname}:{port} wss://{hostname}:{port}"


@bp.route("/vms/<vm_id>/console", methods=["POST"])
def new(vm_id):
    """Issue a console link for a running VM and go to it (no token in a form or a GET)."""
    try:
        token = console.mint(vm_id, current_user.id, actor())
    except NotFound:
        raise  # the 404 page
    except NubeError as error:
        flash_error(error)
        return redirect(url_for("vms.show", vm_id=vm_id))
    return redirect(url_for("console.show", token=token), code=303)


@bp.route("/console/<token>")
def show(token):
    """The console page of a link issued to this user; it only renders (noVNC connects)."""
    try:
        link = console.peek(token, current_user.id)
    except ConsoleRefused as refused:
        response = make_response(
            render_template("console/expired.html", vm_id=refused.vm_id, reason=str(refused)),
            410,
        )
    else:
        installed = (Path(current_app.static_folder) / NOVNC_MODULE).is_file()
        response = make_response(
            render_template(
                "console/show.html",
                vm=vms.detail(vms.get(link["vm_id"])),
                token=token,
                link=link,
                installed=installed,
                port=current_app.config["CONSOLE_PORT"],
            )
        )
        response.headers["Content-Security-Policy"] = CONSOLE_CSP.format(ws_origins=proxy_origins())
    response.headers["Cache-Control"] = "no-store"  # the page carries a live token
    return response
