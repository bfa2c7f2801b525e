"""What the API's resources share: paging, sorting, 202 answers and blueprints."""

from math import ceil

import flask_smorest
from flask import abort, current_app, url_for

from ...errors import InvalidInput, NotFound
from ...services import operations
from ..json_body import ApiParser
from . import problems
from .schemas import MAX_PER_PAGE


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, reading JSON bodies through Nube's depth-checked parser."""

    ARGUMENTS_PARSER = ApiParser()


def blueprint(name, import_name, path, description):
    """A resource's blueprint under /api/v1, answering errors with problem details."""
    bp = Blueprint(
        f"api_v1_{name}", import_name, url_prefix=f"/api/v1{path}", description=description
    )
    problems.register(bp)
    return bp


class Window:
    """One page of a list as the query arguments ask for it."""

    def __init__(self, args):
        default = min(current_app.config["PAGE_SIZE"], MAX_PER_PAGE)
        self.per_page = args.get("per_page") or default
        self.page = args["page"]
        self.query = args.get("q", "").strip()
        self.descending = args.get("dir") == "desc"
        self.offset = (self.page - 1) * self.per_page

    def answer(self, items, total):
        """The list's body: items and the paging figures."""
        return {
            "items": items,
            "total": total,
            "page": self.page,
            "per_page": self.per_page,
            "pages": max(1, ceil(total / self.per_page)),
        }

    def slice(self, items):
        """This page of a list the service returns whole."""
        return self.answer(items[self.offset : self.offset + self.per_page], len(items))


def sort_column(args, columns, default):
    """The column a list sorts by: a bad one is a 400 that names the good ones."""
    sort = args.get("sort") or default
    if sort not in columns:
        abort(400, description=f"sort must be one of {', '.join(columns)}, not {sort!r:.40}")
    return sort


def filtered(read):
    """Run a list read; a bad filter is a bad request (400), not a bad body."""
    try:
        return read()
    except InvalidInput as error:
        abort(400, description=str(error))


def sorted_page(args, service, default_sort):
    """One page of a service's sorted, filtered list (hosts, VMs): its count and its rows."""
    window = Window(args)
    sort = sort_column(args, service.SORT_COLUMNS, default_sort)
    total = filtered(lambda: service.count(window.query))
    rows = filtered(
        lambda: service.search(
            window.query, sort, window.descending, window.per_page, window.offset
        )
    )
    return window.answer(rows, total)


def referring(action):
    """Run an action whose body names other objects: one that does not exist makes the body
    wrong (422), since the route itself was found."""
    try:
        return action()
    except NotFound as error:
        raise InvalidInput(str(error)) from None


def operation_url(op_id):
    """The API address of an operation."""
    return url_for("api_v1_operations.show", op_id=op_id)


def accepted(op_id):
    """202 Accepted with the operation's address to follow."""
    op = operations.get(op_id)
    url = operation_url(op_id)
    body = {"operation": {"id": op_id, "url": url, "kind": op["kind"], "status": op["status"]}}
    return body, 202, {"Location": url}
