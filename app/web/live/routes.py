"""Routes of the live blueprint: what changed on the rows a page shows, as JSON.

Every answer carries an ETag (a hash of its data without the time stamp); a poll that sends it
back in If-None-Match gets 304 with no body while nothing changed.
"""

import hashlib
import json

from flask import Blueprint, jsonify, request

from ...errors import InvalidInput
from ...services import charts, live
from ..helpers import MAX_ROW_ID, bounded_arg

bp = Blueprint("live", __name__, url_prefix="/live")


def _answer(data):
    """data plus the server's time as JSON, with an ETag; 304 when the client has it already."""
    tag = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
    response = jsonify({**data, "ts": live.stamp()})
    response.set_etag(tag)
    response.headers["Cache-Control"] = "no-cache, private"
    return response.make_conditional(request)


def _ids(integers=False):
    """The ids a poll asks about (?ids=a,b,c)."""
    return live.parse_ids(request.args.get("ids", ""), integers=integers)


@bp.errorhandler(InvalidInput)
def bad_request(error):
    """A malformed poll: say why, as JSON."""
    return jsonify(error=str(error)), 400


@bp.route("/vms")
def vms():
    """State, task and freshness of the VMs a page shows."""
    return _answer({"vms": live.vms(_ids())})


@bp.route("/volumes")
def volumes():
    """State, task and size of the volumes a page shows."""
    return _answer({"volumes": live.volumes(_ids())})


@bp.route("/hosts")
def hosts():
    """State, task, capacity and freshness of the hosts a page shows."""
    return _answer({"hosts": live.hosts(_ids(integers=True))})


@bp.route("/overview")
def overview():
    """Counts by state, cluster totals and the recent and in-progress operations."""
    since = request.args.get("since")
    since = None if since is None else bounded_arg("since", 0, 0, MAX_ROW_ID)
    return _answer(live.overview(since=since))


@bp.app_template_global()
def usage_bar_data(used, total):
    """A usage bar's percent, width and colour; for templates."""
    return charts.usage(used, total)
