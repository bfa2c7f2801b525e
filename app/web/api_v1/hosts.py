"""/api/v1/hosts: list, add, show, update, drain and remove hosts; accept a reinstalled
host's new SSH key."""

from flask import jsonify, make_response

from ...errors import Conflict, HostKeyChanged
from ...services import access, hosts
from ..helpers import actor
from .auth import admin_only
from .common import accepted, blueprint, sorted_page
from .schemas import (
    Accepted,
    Host,
    HostCreate,
    HostKeyAccept,
    HostRemoveArgs,
    HostUpdate,
    ListArgs,
    page_of,
)

bp = blueprint("hosts", __name__, "/hosts", "Hypervisor hosts")


@bp.before_request
def hosts_are_for_operators():
    """Members see no host: every route here is forbidden to them."""
    access.require("hosts")


HostPage = page_of(Host, "HostPage")


@bp.route("")
@bp.arguments(ListArgs, location="query")
@bp.response(200, HostPage)
def index(args):
    """Hosts matching a filter, sorted and paged."""
    return sorted_page(args, hosts, "name")


@bp.route("", methods=["POST"])
@bp.arguments(HostCreate)
@bp.response(202, Accepted)
def create(data):
    """Register a host and prepare it (host_add.yaml)."""
    return accepted(hosts.add(data, actor(), wait=False))


@bp.route("/<host_ref>")
@bp.response(200, Host)
def show(host_ref):
    """One host, by id or name."""
    return hosts.detail(hosts.get(host_ref))


@bp.route("/<host_ref>", methods=["PATCH"])
@bp.arguments(HostUpdate)
@bp.response(200, Host)
@bp.alt_response(202, schema=Accepted, description="the change re-prepares the host")
def update(data, host_ref):
    """Change a host; a new address or share re-runs its preparation (202)."""
    row = hosts.get(host_ref)
    op_id = hosts.update(row["id"], data, actor(), wait=False)
    if op_id is not None:  # a Response, so the Host schema does not filter the 202's body
        body, status, headers = accepted(op_id)
        return make_response(jsonify(body), status, headers)
    return hosts.detail(hosts.get(row["id"]))


@bp.route("/<host_ref>/drain", methods=["POST"])
@bp.response(202, Accepted)
def drain(host_ref):
    """Put a host in maintenance and move its VMs to other hosts."""
    return accepted(hosts.drain(host_ref, actor(), wait=False))


@bp.route("/<host_ref>", methods=["DELETE"])
@bp.arguments(HostRemoveArgs, location="query")
@bp.response(202, Accepted)
def remove(args, host_ref):
    """Remove a host: its VMs first (removed, or moved away with drain=true)."""
    return accepted(hosts.remove(host_ref, actor(), wait=False, drain=args["drain"]))


@bp.route("/<host_ref>/accept-key", methods=["POST"])
@admin_only
@bp.arguments(HostKeyAccept)
@bp.response(200, Host)
def accept_key(data, host_ref):
    """Admins: record the SSH key a reinstalled host offers now, when it has the fingerprint
    read on the host itself (409 when it has not)."""
    row = hosts.get(host_ref)
    try:
        hosts.accept_host_key(row["id"], data["fingerprint"], actor())
    except HostKeyChanged as error:
        raise Conflict(str(error)) from None  # the host answered: not a 503
    return hosts.detail(hosts.get(row["id"]))
