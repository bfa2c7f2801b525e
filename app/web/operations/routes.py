"""Routes of the operations blueprint."""

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, url_for

from ... import formats
from ...errors import InvalidInput, NubeError
from ...services import operation_view, operations
from ...services import retry as retry_service
from ..helpers import MAX_ROW_ID, Page, actor, bounded_arg, flash_error
from . import display
from .forms import OperationActionForm

bp = Blueprint("operations", __name__, url_prefix="/operations")
bp.add_app_template_filter(display.duration, "duration")
bp.add_app_template_filter(display.pretty_json, "pretty_json")

# The API operation's fields log.json carries (the page follows these, in the API's shapes).
LOG_JSON_KEYS = (
    "id",
    "status",
    "progress_done",
    "progress_total",
    "progress",
    "cancel_requested",
    "error",
    "started_at",
    "finished_at",
    "log",
    "more",
    "done",
)


@bp.route("/")
def index():
    """Operations, filtered and paged, newest first."""
    page = Page(current_app.config["PAGE_SIZE"], None, ())
    rows = []
    try:
        rows, page.total = operations.page(page.query, page.per_page, page.offset)
    except NubeError as error:
        page.error = str(error)
    return render_template("operations/index.html", operations=rows, page=page)


@bp.route("/<int:op_id>")
def show(op_id):
    """One operation: input, status, times, worker, error, and its log (followed live)."""
    op = operations.get(op_id)
    lines = operations.log(op_id)
    return render_template(
        "operations/show.html",
        op=op,
        lines=lines,
        terminal=op["status"] in operations.TERMINAL,
        action_form=OperationActionForm(),
        retry_actions=retry_service.actions(op),
        host_form_again=retry_service.host_form_again(op),
    )


@bp.route("/<int:op_id>/log.json")
def log_json(op_id):
    """The operation's status, progress and log lines after a line id, as the API's operation
    object names them, plus the times as the page shows them (`display`)."""
    after = bounded_arg("after", 0, 0, MAX_ROW_ID)
    op = operation_view.follow(op_id, after)
    answer = {key: op[key] for key in LOG_JSON_KEYS}
    # as the page shows them (the template's own filters), so the script formats nothing
    answer["display"] = {
        "started_at": formats.when(op["started_at"]) if op["started_at"] else "-",
        "finished_at": formats.when(op["finished_at"]) if op["finished_at"] else "-",
        "duration": display.duration(op),
    }
    return jsonify(answer)


@bp.route("/<int:op_id>/cancel", methods=["POST"])
def cancel(op_id):
    """Ask a pending or running operation to stop."""
    form = OperationActionForm()
    if form.validate_on_submit():
        try:
            operations.cancel(op_id, actor())
        except InvalidInput as error:
            flash_error(error)
        else:
            flash(f"Cancel requested for operation {op_id}.", "info")
    return redirect(url_for("operations.show", op_id=op_id))


@bp.route("/<int:op_id>/retry", methods=["POST"])
def retry(op_id):
    """Start a failed or interrupted operation's action again."""
    form = OperationActionForm()
    if form.validate_on_submit():
        try:
            new_id = retry_service.retry(op_id, actor())
        except NubeError as error:
            flash_error(error)
        else:
            flash(f"Retrying operation {op_id}.", "info")
            return redirect(url_for("operations.show", op_id=new_id))
    return redirect(url_for("operations.show", op_id=op_id))


@bp.route("/<int:op_id>/recheck", methods=["POST"])
def recheck(op_id):
    """Record the target's real state, as its hypervisor reports it."""
    form = OperationActionForm()
    if form.validate_on_submit():
        try:
            new_id = retry_service.recheck(op_id, actor())
        except NubeError as error:
            flash_error(error)
        else:
            flash(f"Re-checking the target of operation {op_id}.", "info")
            return redirect(url_for("operations.show", op_id=new_id))
    return redirect(url_for("operations.show", op_id=op_id))
