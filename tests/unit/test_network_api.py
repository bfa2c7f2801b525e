"""/api/v1/networks and the VMs' NICs over HTTP: create (201), list with a filter, show with
the addresses in use, remove (204; 409 naming the VMs while any uses it); VMs created with
`networks` show `ip` and their NICs; refusals as problem details with app.core's messages; a
member's view; the OpenAPI document."""

import pytest

from app import core
from app.errors import InvalidInput
from app.services import users
from app.services.networks import NICS_MAX
from tests.api_client import Api, assert_problem, finished, make_token
from tests.factories import gen_image, gen_prepared_host

NET1 = {"name": "net1", "cidr": "10.20.0.0/24", "gateway": "10.20.0.1", "dns": ["10.20.0.1"]}


@pytest.fixture
def prepared(app):
    """A ready host with its sudo password (networks are set up with it) and an image."""
    gen_prepared_host(app)
    return gen_image(app)


def make_network(api, **fields):
    """Create a network through the API (201): its body."""
    response = api.post("/networks", {**NET1, **fields})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def make_vm(api, image, vm_id, networks):
    """Create a VM on networks through the API and follow its operation: the VM."""
    body = {"id": vm_id, "image": image, "mem": 64, "networks": networks}
    op = finished(api, api.post("/vms", body))
    assert (op["kind"], op["status"]) == ("vm.create", "succeeded"), op
    return api.get(f"/vms/{vm_id}").get_json()


# --- create, list, show, remove ---------------------------------------------------------


def test_create_list_show_and_remove_a_network(admin_api):
    network = make_network(admin_api)
    assert (network["name"], network["type"], network["vni"]) == ("net1", "vxlan", 100)
    assert (network["cidr"], network["gateway"], network["dns"]) == (
        "10.20.0.0/24",
        "10.20.0.1",
        ["10.20.0.1"],
    )
    assert (network["used"], network["free"], network["addresses"]) == (0, 253, [])
    assert (network["project"], network["created_by"]) == ("default", "admin")
    make_network(admin_api, name="lan2", cidr="192.168.7.0/28", dns="192.168.7.1", gateway="")
    listed = admin_api.get("/networks").get_json()
    assert [n["name"] for n in listed["items"]] == ["lan2", "net1"] and listed["total"] == 2
    page = admin_api.get("/networks", query_string={"per_page": 1, "page": 2}).get_json()
    assert [n["name"] for n in page["items"]] == ["net1"] and page["pages"] == 2
    found = admin_api.get("/networks", query_string={"q": "vni = 101"}).get_json()
    assert [n["name"] for n in found["items"]] == ["lan2"]
    assert_problem(admin_api.get("/networks", query_string={"q": "nope = 1"}), 400)
    shown = admin_api.get("/networks/net1").get_json()
    assert shown == {**network, "addresses": []}
    response = admin_api.call("DELETE", "/networks/net1")
    assert response.status_code == 204 and response.get_data() == b""
    assert_problem(admin_api.get("/networks/net1"), 404, "network net1 not found")
    assert_problem(admin_api.call("DELETE", "/networks/net1"), 404)


def test_vms_on_a_network_show_their_addresses(admin_api, prepared):
    make_network(admin_api, range="10.20.0.10-10.20.0.20")
    vm = make_vm(admin_api, prepared, "web1", ["net1", {"network": "net1", "ip": "10.20.0.15"}])
    assert vm["ip"] == "10.20.0.10"
    assert [(n["network"], n["ip"]) for n in vm["networks"]] == [
        ("net1", "10.20.0.10"),
        ("net1", "10.20.0.15"),
    ]
    network = admin_api.get("/networks/net1").get_json()
    assert (network["used"], network["free"]) == (2, 9)
    macs = [n["mac"] for n in vm["networks"]]
    assert network["addresses"] == [
        {"ip": "10.20.0.10", "vm": "web1", "nic": 0, "mac": macs[0]},
        {"ip": "10.20.0.15", "vm": "web1", "nic": 1, "mac": macs[1]},
    ]
    listed = admin_api.get("/vms", query_string={"q": "ip = 10.20.0.10"}).get_json()
    assert [v["id"] for v in listed["items"]] == ["web1"]
    assert listed["items"][0]["networks"] == vm["networks"]
    refused = admin_api.call("DELETE", "/networks/net1")
    assert_problem(refused, 409, "in use by 1 VM (web1)")
    assert admin_api.get("/networks/net1").get_json()["used"] == 2
    finished(admin_api, admin_api.call("DELETE", "/vms/web1"))
    assert admin_api.call("DELETE", "/networks/net1").status_code == 204


def test_bad_nic_requests_are_refused_and_create_nothing(admin_api, prepared):
    make_network(admin_api, range="10.20.0.10-10.20.0.11")
    make_vm(admin_api, prepared, "web1", [{"network": "net1", "ip": "10.20.0.11"}])
    base = {"id": "web2", "image": prepared, "mem": 64}
    cases = [
        ([{"network": "net1", "ip": "10.20.0.11"}], 409, "already in use on network net1"),
        ([{"network": "net1", "ip": "10.20.0.50"}], 422, "outside the range of network net1"),
        ([{"network": "net1", "ip": "not-an-ip"}], 422, "must be an IPv4 address"),
        (["nonet"], 422, "network nonet not found"),
        ([{"net": "net1"}], 422, "networks[0] must be a network name or {network, ip}"),
        (["net1"] * (NICS_MAX + 1), 422, f"at most {NICS_MAX} NICs"),
        ("net1", 422, "Not a valid list"),
    ]
    for networks, status, detail in cases:
        assert_problem(admin_api.post("/vms", {**base, "networks": networks}), status, detail)
    assert_problem(admin_api.get("/vms/web2"), 404)
    make_vm(admin_api, prepared, "web2", ["net1"])  # the last free address
    full = admin_api.post("/vms", {**base, "id": "web3", "networks": ["net1"]})
    assert_problem(full, 409, "network net1 has no free address: all 2 addresses")
    assert admin_api.get("/networks/net1").get_json()["free"] == 0


# --- refusals: the same messages as app.core ----------------------------------------------


def core_message(app, network):
    """The InvalidInput message core.addNetwork gives."""
    with app.app_context(), pytest.raises(InvalidInput) as refused:
        core.addNetwork(network)
    return str(refused.value)


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "-dash"},
        {"cidr": "10.20.0.0/33"},
        {"cidr": "8.8.8.0/24"},
        {"cidr": "10.20.0.1/24"},
        {"gateway": "10.21.0.1"},
        {"dns": "1.2.3.4,nope"},
        {"range": "10.20.0.9"},
        {"type": "vlan"},
        {"bridge": "br0"},
        {"mtu": 100},
    ],
    ids=lambda bad: f"{next(iter(bad))}",
)
def test_a_bad_network_is_refused_alike_by_the_api_and_core(app, admin_api, bad):
    network = {**NET1, **bad}
    message = core_message(app, network)
    body = assert_problem(admin_api.post("/networks", network), 422)
    assert message in body["detail"], (message, body)
    assert admin_api.get("/networks").get_json()["total"] == 0


def test_other_refusals(admin_api):
    missing = admin_api.post("/networks", {"name": "x1"})
    assert "cidr" in assert_problem(missing, 422)["errors"]
    assert (
        "color" in assert_problem(admin_api.post("/networks", {**NET1, "color": 1}), 422)["errors"]
    )
    assert_problem(admin_api.post("/networks", {**NET1, "project": "nope"}), 422, "project nope")
    make_network(admin_api)
    assert_problem(admin_api.post("/networks", NET1), 409, "a network named net1 already exists")
    lan = {"name": "lan", "type": "bridge", "bridge": "br0", "cidr": "10.9.0.0/24", "gateway": ""}
    bridged = make_network(admin_api, **lan)
    assert (bridged["type"], bridged["bridge"], bridged["vni"]) == ("bridge", "br0", None)


# --- members ----------------------------------------------------------------------------


def test_a_member_sees_only_their_projects_networks(app, admin_api):
    with app.app_context():
        users.create("ana", "member-password-1", "member", "test")
        for name in ("alpha", "beta"):
            core.addProject({"name": name})
        core.addMember("alpha", "ana")
    make_network(admin_api, name="theirs", project="beta")
    member = Api(app, make_token(app, "ana"))
    mine = make_network(member, name="mine", cidr="10.30.0.0/24", gateway="10.30.0.1", dns=[])
    assert (mine["project"], mine["created_by"]) == ("alpha", "ana")
    listed = member.get("/networks").get_json()
    assert [n["name"] for n in listed["items"]] == ["mine"] and listed["total"] == 1
    assert member.get("/networks", query_string={"q": "name = theirs"}).get_json()["total"] == 0
    assert_problem(member.get("/networks/theirs"), 404, "network theirs not found")
    assert_problem(member.call("DELETE", "/networks/theirs"), 404, "network theirs not found")
    assert admin_api.get("/networks/theirs").get_json()["project"] == "beta"
    sneaky = member.post("/networks", {**NET1, "name": "sneaky", "project": "beta"})
    assert_problem(sneaky, 422, "project beta not found")
    lan = {**NET1, "name": "lan", "type": "bridge", "bridge": "br0"}
    assert_problem(member.post("/networks", lan), 403)  # the hosts' own LAN: not a member's
    assert admin_api.get("/networks").get_json()["total"] == 2


# --- the OpenAPI document ---------------------------------------------------------------


def test_the_openapi_document_describes_networks(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/networks"])
    assert "201" in paths["/api/v1/networks"]["post"]["responses"]
    one = paths["/api/v1/networks/{name}"]
    assert "200" in one["get"]["responses"] and "204" in one["delete"]["responses"]
    schemas = spec["components"]["schemas"]
    assert schemas["NetworkCreate"]["properties"]["type"]["enum"] == ["vxlan", "bridge"]
    assert set(schemas["NetworkCreate"]["required"]) == {"name", "cidr"}
    assert "addresses" in schemas["NetworkDetail"]["properties"]
    vm = schemas["Vm"]["properties"]
    assert "ip" in vm and vm["networks"]["items"]["$ref"].endswith("/VmNic")
    nics = schemas["VmCreate"]["properties"]["networks"]
    assert nics["maxItems"] == NICS_MAX and len(nics["items"]["oneOf"]) == 2
