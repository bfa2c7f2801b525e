"""Small helpers the blueprints share: role checks, paging, flashing errors, template filters."""

import functools
from math import ceil
from urllib.parse import urlsplit

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from markupsafe import Markup, escape
from werkzeug.routing import IntegerConverter

from .. import formats, states
from ..errors import Busy, NotFound, NubeError
from ..numbers import is_digits
from ..services import access, charts, live, snapshots, vms, volumes

# The badge colours of every state word (app/states, where they are defined).
STATUS_COLOURS = states.COLOURS


def admin_required(view):
    """Only admins may use the decorated view."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated or not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def same_site_page(url):
    """The path (and query) of url when it is a page of this site, else None: where a form
    was sent from, read from the Referer, never followed to another site."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def actor():
    """Who is acting: the logged-in user's name."""
    return current_user.username


def flash_form_errors(form):
    """Flash what is wrong with a form that is not shown again: each field's messages."""
    for field, messages in form.errors.items():
        label = form[field].label.text if field in form else field
        for message in messages:
            flash(f"{label}: {message}", "danger")


def flash_error(error):
    """Flash a Nube error, linking the operation that holds a busy target."""
    if isinstance(error, Busy) and error.operation_id:
        link = url_for("operations.show", op_id=error.operation_id)
        flash(
            Markup('{} <a href="{}">See operation {}</a>.').format(
                str(error), link, error.operation_id
            ),
            "warning",
        )
    else:
        flash(str(error), "danger")


def flash_operation(message, op_id):
    """Flash what was started, with a link to its operation."""
    link = url_for("operations.show", op_id=op_id)
    flash(Markup('{} <a href="{}">Operation {}</a>.').format(message, link, op_id), "info")


def to_operation(action, message, back):
    """Run a page's action (it returns an operation id): to its operation's page, with message
    flashed; a refusal is flashed and back() answers (a target not found is the 404 page)."""
    try:
        op_id = action()
    except NotFound:
        raise
    except NubeError as error:
        flash_error(error)
        return back()
    flash_operation(message, op_id)
    return redirect(url_for("operations.show", op_id=op_id))


MAX_PAGE = 1_000_000  # SQLite's OFFSET is a 64-bit integer; no list is near this long
MAX_ROW_ID = 2**62


def bounded_arg(name, default, minimum, maximum):
    """An integer query argument clamped to [minimum, maximum]; the default when it is no
    integer (a huge one must never reach SQLite, which would overflow)."""
    text = request.args.get(name, "").strip()
    if not is_digits(text):
        return default
    if len(text) > len(str(maximum)):  # never int() a thousand digits
        return maximum
    return min(max(int(text), minimum), maximum)


class BoundedIntConverter(IntegerConverter):
    """The <int:...> URL converter, bounded: a huge id is a 404, never an overflow in SQLite."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


class Page:
    """One page of a list: the request's page number, size, query and sort."""

    def __init__(self, per_page, sort_default, sort_columns):
        self.per_page = per_page
        self.number = bounded_arg("page", 1, 1, MAX_PAGE)
        self.query = request.args.get("q", "").strip()
        sort = request.args.get("sort", sort_default)
        self.sort = sort if sort in sort_columns else sort_default
        self.descending = request.args.get("dir") == "desc"
        self.total = 0
        self.error = None

    @property
    def offset(self):
        """Rows to skip."""
        return (self.number - 1) * self.per_page

    @property
    def pages(self):
        """How many pages there are."""
        return max(1, ceil(self.total / self.per_page))

    def args(self, **changes):
        """Query-string arguments for a link to another page or sort order."""
        values = {
            "q": self.query or None,
            "sort": self.sort,
            "dir": "desc" if self.descending else None,
            "page": self.number,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value not in (None, "")}


def init_app(app):
    """Register template filters and globals."""

    @app.template_filter("status_badge")
    def status_badge(status):
        """A coloured badge for a state or status (its colour and label from app/states)."""
        return Markup('<span class="badge text-bg-{} status-{}">{}</span>').format(
            states.colour(status), escape(status or "-"), escape(states.label(status))
        )

    app.add_template_filter(formats.mib, "mib")
    app.add_template_filter(formats.gib, "gib")
    app.add_template_filter(formats.human_bytes, "bytes")
    app.add_template_filter(formats.when, "when")
    app.jinja_env.globals.update(
        can=lambda permission: access.current().may(permission),
        STATUS_COLOURS=STATUS_COLOURS,
        states=states,
        VM_ACTIONS=vms.ACTIONS,
        VM_MIGRATE_STATES=vms.MIGRATE_STATES,
        VOLUME_ACTIONS=volumes.ACTIONS,
        SNAPSHOT_ACTIONS=snapshots.ACTIONS,
        LIVE_MAX_IDS=live.MAX_IDS,
        operation_progress=charts.operation_progress,
    )
