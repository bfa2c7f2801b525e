"""/api/v1/operations: list operations, follow one's status and log, cancel, retry or
re-check one."""

from ...services import operation_view, operations
from ...services import retry as retry_service
from ..helpers import actor
from .common import Window, accepted, blueprint, filtered, operation_url
from .schemas import Accepted, ListArgs, Operation, OperationArgs, page_of

bp = blueprint("operations", __name__, "/operations", "Long actions, their status and logs")
OperationPage = page_of(Operation, "OperationPage")


def _public(row):
    """An operation as the API shows it: its fields and its address."""
    return {**operation_view.public(row), "url": operation_url(row["id"])}


@bp.route("")
@bp.arguments(ListArgs, location="query")
@bp.response(200, OperationPage)
def index(args):
    """Operations matching a filter, newest first, paged."""
    window = Window(args)
    rows, total = filtered(lambda: operations.page(window.query, window.per_page, window.offset))
    return window.answer([_public(row) for row in rows], total)


@bp.route("/<int:op_id>")
@bp.arguments(OperationArgs, location="query")
@bp.response(200, Operation)
def show(args, op_id):
    """An operation and its log lines after a line id (follow with the last id seen)."""
    return {**operation_view.follow(op_id, args["after"]), "url": operation_url(op_id)}


@bp.route("/<int:op_id>/cancel", methods=["POST"])
@bp.response(202, Accepted)
def cancel(op_id):
    """Ask a pending or running operation to stop."""
    operations.cancel(op_id, actor())
    return accepted(op_id)


@bp.route("/<int:op_id>/retry", methods=["POST"])
@bp.response(202, Accepted)
def retry(op_id):
    """Start a failed or interrupted operation's action again: the new operation."""
    return accepted(retry_service.retry(op_id, actor()))


@bp.route("/<int:op_id>/recheck", methods=["POST"])
@bp.response(202, Accepted)
def recheck(op_id):
    """Read a failed operation's target's real state from its hypervisor and record it."""
    return accepted(retry_service.recheck(op_id, actor()))
