"""The network pages: Networks in the nav, the list with its filter and create form, a
network's page with the addresses in use, its removal through a page that says what goes (and
which VMs keep it); the VM create form's networks and fixed address, the VM page's NICs and
the VMs list's IP column. Forms carry CSRF tokens; a refusal says why and changes nothing."""

import re

import pytest

from app import core
from app.errors import InvalidInput
from tests.conftest import csrf_token, login, row
from tests.factories import gen_image, gen_prepared_host, gen_user
from tests.html import page

OPERATION = re.compile(r"/operations/\d+")
NET1 = {"name": "net1", "cidr": "10.20.0.0/24", "gateway": "10.20.0.1"}


def press(client, path, data=None, token_page="/networks/"):
    """Post a form with the CSRF token a page carries."""
    return client.post(path, data={"csrf_token": csrf_token(client, token_page), **(data or {})})


def add_network(app, **fields):
    """A network made through app.core: its dict."""
    with app.app_context():
        return core.addNetwork({**NET1, **fields})


def network_names(app):
    """The networks core.listNetworks shows, by name."""
    with app.app_context():
        return [n["name"] for n in core.listNetworks()]


def listed(client, path="/networks/"):
    """The network names of the list's rows, in order."""
    return [tr["data-network"] for tr in page(client.get(path)).rows(data_network=True)]


def vm_count(app):
    """How many VM rows exist."""
    return row(app, "SELECT COUNT(*) AS n FROM vms")["n"]


@pytest.fixture
def prepared(app):
    """A ready host with its sudo password (networks are set up with it) and an image."""
    gen_prepared_host(app)
    return gen_image(app)


def member_of_lab(app):
    """A test client logged in as stu, a member of project lab."""
    gen_user(app, "stu", "stu-password", role="member")
    with app.app_context():
        core.addProject({"name": "lab"})
        core.addMember("lab", "stu")
    client = app.test_client()
    assert login(client, "stu", "stu-password").status_code == 302
    return client


# --- the list, its filter and the create form ---------------------------------------------


def test_the_nav_links_to_networks_for_every_role(app, admin_client, operator_client):
    member = member_of_lab(app)
    for client in (admin_client, operator_client, member):
        assert page(client.get("/")).link("/networks/").text == "Networks"


def test_create_a_network_from_the_form_then_see_it_listed_and_its_page(app, admin_client):
    doc = page(admin_client.get("/networks/"))
    assert doc.by_id("empty-state")
    form = doc.by_id("network-form")
    assert [o["value"] for o in form.options("type")] == ["vxlan", "bridge"]
    assert [o["value"] for o in form.options("project")] == ["default"]
    fields = {
        "name": "net1",
        "type": "vxlan",
        "cidr": "10.20.0.0/24",
        "gateway": "10.20.0.1",
        "dns": "10.20.0.1, 1.1.1.1",
        "range": "10.20.0.10-10.20.0.99",
        "bridge": "",
        "mtu": "",
        "project": "default",
    }
    response = press(admin_client, "/networks/", fields)
    assert response.status_code == 302 and response.headers["Location"] == "/networks/net1"
    doc = page(admin_client.get("/networks/net1"))
    assert doc.alert("Network net1 created (10.20.0.0/24).", "success")
    assert doc.by_id("network-vni").text == "100"
    assert doc.by_id("network-bridge").text == "nbr100"
    assert doc.by_id("network-dns").text == "10.20.0.1, 1.1.1.1"
    assert doc.by_id("network-range").text == "10.20.0.10-10.20.0.99"
    assert doc.by_id("network-usage").text == "0 used, 90 free"
    assert doc.by_id("no-addresses")
    assert doc.by_id("remove-link")["href"] == "/networks/net1/remove"
    tr = page(admin_client.get("/networks/")).one("tr", data_network="net1")
    assert tr.cells() == [
        "net1", "vxlan", "100 (nbr100)", "10.20.0.0/24", "10.20.0.1", "0 / 90", "default",
    ]  # fmt: skip
    assert tr.link("/networks/net1")


def test_a_bridge_network_names_its_bridge(app, admin_client):
    fields = {"name": "lan", "type": "bridge", "cidr": "192.168.5.0/24", "bridge": "br0"}
    assert press(admin_client, "/networks/", fields).status_code == 302
    tr = page(admin_client.get("/networks/")).one("tr", data_network="lan")
    assert tr.cells()[:3] == ["lan", "bridge", "br0"]


def service_message(app, network):
    """The InvalidInput message app.core gives."""
    with app.app_context(), pytest.raises(InvalidInput) as refused:
        core.addNetwork(network)
    return str(refused.value)


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "bad name"},
        {"cidr": "8.8.8.0/24"},
        {"cidr": "10.20.0.0/33"},
        {"dns": "10.0.0.1, nope"},
        {"gateway": "10.99.0.1"},
        {"range": "10.20.0.50-10.20.0.10"},
        {"type": "vxlan", "bridge": "br0"},
        {"mtu": "100"},
    ],
    ids=lambda bad: "-".join(bad),
)
def test_bad_input_says_the_services_message_and_changes_nothing(app, admin_client, bad):
    fields = {**NET1, **bad}
    said = service_message(app, {**fields, **({"mtu": int(bad["mtu"])} if "mtu" in bad else {})})
    response = press(admin_client, "/networks/", fields)
    assert response.status_code == 200
    doc = page(response)
    shown = doc.field_errors() + doc.alerts("danger")
    assert any(said in text for text in shown), (said, shown)
    assert network_names(app) == []


def test_a_name_taken_is_refused_with_the_services_message(app, admin_client):
    add_network(app)
    response = press(admin_client, "/networks/", {**NET1, "cidr": "10.21.0.0/24", "gateway": ""})
    assert page(response).alert("a network named net1 already exists", "danger")
    assert network_names(app) == ["net1"]


def test_every_post_needs_a_csrf_token(app, admin_client):
    add_network(app, name="keep")
    assert admin_client.post("/networks/", data={**NET1}).status_code == 400
    response = admin_client.post("/networks/keep/remove", data={"confirm": "keep"})
    assert response.status_code == 400
    assert network_names(app) == ["keep"]


def test_the_list_filters_with_the_filter_language(app, admin_client):
    add_network(app)
    add_network(app, name="lan", type="bridge", bridge="br0", cidr="192.168.5.0/24", gateway="")
    assert listed(admin_client) == ["lan", "net1"]
    assert listed(admin_client, "/networks/?q=type+%3D+vxlan") == ["net1"]
    assert listed(admin_client, "/networks/?q=net1") == ["net1"]
    doc = page(admin_client.get("/networks/?q=nope+%3D+1"))
    assert "unknown column 'nope'" in doc.by_id("filter-error").text
    assert doc.find(id="empty-state") is None
    none = page(admin_client.get("/networks/?q=x9"))
    assert none.rows(data_network=True) == [] and none.find(text="No network matches this filter.")


# --- VMs on networks ----------------------------------------------------------------------


def create_vm(client, image, **fields):
    """Post the VM create form."""
    data = {"id": "web1", "image": image, "mem": "64", "vcpus": "1", "host": "", **fields}
    return press(client, "/vms/new", data, token_page="/vms/new")


def test_a_vm_created_on_networks_shows_its_nics(app, admin_client, prepared):
    add_network(app, range="10.20.0.10-10.20.0.20")
    add_network(app, name="net2", cidr="10.30.0.0/24", gateway="")
    form = page(admin_client.get("/vms/new")).by_id("vm-form")
    options = form.options("networks")
    assert [(o["value"], o.text) for o in options] == [
        ("net1", "net1 (10.20.0.0/24, 11 free)"),
        ("net2", "net2 (10.30.0.0/24, 254 free)"),
    ]
    assert form.field("networks").has("multiple") and form.field("ip")
    response = create_vm(admin_client, prepared, networks=["net1", "net2"], ip="10.20.0.15")
    assert response.status_code == 302 and OPERATION.fullmatch(response.headers["Location"])
    doc = page(admin_client.get("/vms/web1"))
    assert doc.by_id("vm-ip").text == "10.20.0.15"
    nics = doc.by_id("vm-nics")
    first, second = nics.rows(data_network=True)
    assert first.cells()[:3] == ["0", "net1", "10.20.0.15"] and first.link("/networks/net1")
    assert second.cells()[:3] == ["1", "net2", "10.30.0.1"]
    assert re.fullmatch(r"52:54(:[0-9a-f]{2}){4}", first.cells()[3])
    vm_row = page(admin_client.get("/vms/")).one("tr", data_vm_id="web1")
    assert vm_row.one("td", data_ip=True).text == "10.20.0.15"
    network = page(admin_client.get("/networks/net1"))
    (address,) = network.by_id("network-addresses").rows(data_ip=True)
    assert address.cells() == ["10.20.0.15", "web1", "0", first.cells()[3]]
    assert address.link("/vms/web1")
    assert network.by_id("network-usage").text == "1 used, 10 free"


@pytest.mark.parametrize(
    "fields, said",
    [
        ({"ip": "10.20.0.5"}, "a fixed address needs a network"),
        ({"networks": ["net1"], "ip": "10.99.0.5"}, "is not a host address of 10.20.0.0/24"),
        ({"networks": ["net1"], "ip": "nope"}, "must be an IPv4 address"),
        ({"networks": ["gone"]}, "network gone not found"),
    ],
)
def test_bad_nic_choices_are_refused_and_create_nothing(app, admin_client, prepared, fields, said):
    add_network(app)
    response = create_vm(admin_client, prepared, **fields)
    assert response.status_code == 200
    assert page(response).alert(said, "danger")
    assert vm_count(app) == 0 and network_names(app) == ["net1"]


def test_without_networks_the_vm_form_has_no_network_fields(app, admin_client, prepared):
    form = page(admin_client.get("/vms/new")).by_id("vm-form")
    assert not form.has_element("select", name="networks")
    assert not form.has_element("input", name="ip")
    assert create_vm(admin_client, prepared).status_code == 302
    doc = page(admin_client.get("/vms/web1"))
    assert doc.by_id("vm-ip").text == "none" and doc.by_id("no-nics")


# --- removal ------------------------------------------------------------------------------


def test_remove_through_the_page_that_says_what_goes(app, admin_client):
    add_network(app)
    doc = page(admin_client.get("/networks/net1/remove"))
    assert "vxlan 10.20.0.0/24, VNI 100" in doc.by_id("what-goes").text
    assert doc.find(id="in-use") is None
    assert not doc.by_id("network-remove-form").button("Remove network").has("disabled")
    wrong = press(
        admin_client, "/networks/net1/remove", {"confirm": "net2"}, "/networks/net1/remove"
    )
    assert page(wrong).alert("Type the network's name (net1) to confirm its removal.", "warning")
    assert network_names(app) == ["net1"]
    response = press(
        admin_client, "/networks/net1/remove", {"confirm": "net1"}, "/networks/net1/remove"
    )
    assert response.status_code == 302 and response.headers["Location"] == "/networks/"
    assert page(admin_client.get("/networks/")).alert("Network net1 removed.", "success")
    assert network_names(app) == []
    assert admin_client.get("/networks/net1").status_code == 404


def test_a_network_in_use_is_not_removed_and_its_vms_are_named(app, admin_client, prepared):
    add_network(app)
    with app.app_context():
        core.addVm({"id": "web1", "image": prepared, "mem": 64, "networks": ["net1"]})
    doc = page(admin_client.get("/networks/net1/remove"))
    in_use = doc.by_id("in-use")
    assert "1 VM uses it" in in_use.text and in_use.link("/vms/web1")
    assert doc.by_id("network-remove-form").button("Remove network").has("disabled")
    response = press(
        admin_client, "/networks/net1/remove", {"confirm": "net1"}, "/networks/net1/remove"
    )
    assert response.status_code == 302 and response.headers["Location"] == "/networks/net1/remove"
    refused = page(admin_client.get("/networks/net1/remove"))
    assert refused.alert("network net1 is in use by 1 VM (web1): remove them first", "danger")
    assert network_names(app) == ["net1"]


def test_get_changes_nothing(app, admin_client):
    add_network(app)
    assert admin_client.get("/networks/net1/remove").status_code == 200
    assert network_names(app) == ["net1"]


# --- members ------------------------------------------------------------------------------


def test_a_member_sees_only_their_projects_networks(app, prepared):
    member = member_of_lab(app)
    add_network(app, name="theirs")
    add_network(app, name="mine", cidr="10.30.0.0/24", gateway="", project="lab")
    assert listed(member) == ["mine"]
    for path in ("/networks/theirs", "/networks/theirs/remove"):
        assert member.get(path).status_code == 404, path
    token = csrf_token(member, "/networks/")
    response = member.post("/networks/theirs/remove", data={"csrf_token": token, "confirm": "x"})
    assert response.status_code == 404
    form = page(member.get("/networks/")).by_id("network-form")
    assert [o["value"] for o in form.options("type")] == ["vxlan"]  # not the hosts' own LAN
    assert not form.has_element("input", name="bridge")
    refused = press(member, "/networks/", {**NET1, "name": "lan", "type": "bridge"})
    assert refused.status_code == 200 and network_names(app) == ["mine", "theirs"]
    vm_form = page(member.get("/vms/new")).by_id("vm-form")
    assert [o["value"] for o in vm_form.options("networks")] == ["mine"]
    made = press(
        member, "/networks/", {**NET1, "name": "ours", "cidr": "10.40.0.0/24", "gateway": ""}
    )
    assert made.status_code == 302
    with app.app_context():
        assert core.listNetworks("name = ours")[0]["project"] == "lab"
