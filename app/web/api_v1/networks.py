"""/api/v1/networks: list, create, show (with the addresses in use), change the rules of and
remove virtual networks."""

from ...services import networks
from ..helpers import actor
from .common import Window, accepted, blueprint, filtered, referring
from .network_schemas import (
    Network,
    NetworkCreate,
    NetworkDetail,
    NetworkListArgs,
    NetworkUpdate,
)
from .schemas import Accepted, page_of

bp = blueprint("networks", __name__, "/networks", "Virtual networks and their addresses")
NetworkPage = page_of(Network, "NetworkPage")


def _detail(name):
    """A network with the addresses in use on it."""
    return {**networks.get(name), "addresses": networks.addresses(name)}


@bp.route("")
@bp.arguments(NetworkListArgs, location="query")
@bp.response(200, NetworkPage)
def index(args):
    """Networks matching a filter, by name, paged."""
    window = Window(args)
    return window.slice(filtered(lambda: networks.search(window.query)))


@bp.route("", methods=["POST"])
@bp.arguments(NetworkCreate)
@bp.response(201, NetworkDetail)
def create(data):
    """Define a network in a project (a vxlan one gets the next free VNI)."""
    network = referring(lambda: networks.add(data, actor()))
    return {**network, "addresses": []}


@bp.route("/<name>")
@bp.response(200, NetworkDetail)
def show(name):
    """One network, with each address in use (the VM and NIC holding it)."""
    return _detail(name)


@bp.route("/<name>", methods=["PATCH"])
@bp.arguments(NetworkUpdate)
@bp.response(202, Accepted)
def update(data, name):
    """Replace a network's rules and bring them to the hosts that carry it (a bridge
    network's: admins and operators)."""
    return accepted(networks.update(name, data, actor(), wait=False))


@bp.route("/<name>", methods=["DELETE"])
@bp.response(204)
def remove(name):
    """Remove a network no VM uses (409, naming them, while any does)."""
    networks.remove(name, actor())
    return ""
