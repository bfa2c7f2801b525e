"""A network's rules (its security group) over HTTP: given at creation (else the defaults),
replaced with PATCH /networks/{name} (202, an operation that brings them to the hosts that carry
the network, as the recording provisioner sees), refused with the service's messages and
changing nothing; members change their own project's vxlan networks only; the OpenAPI
document."""

import pytest

from app import core
from app.net_rules import RULES_MAX
from app.services import users
from tests.api_client import Api, assert_problem, finished, make_token
from tests.factories import gen_image, gen_prepared_host

NET1 = {"name": "net1", "cidr": "10.20.0.0/24", "gateway": "10.20.0.1"}
DEFAULT_RULES = [
    {"protocol": "any", "source": "network"},
    {"protocol": "tcp", "ports": "22", "source": "any"},
]
WEB = [
    {"protocol": "tcp", "ports": "80", "source": "any"},
    {"protocol": "tcp", "ports": "8000-8090", "source": "10.0.0.0/8"},
    {"protocol": "icmp", "source": "network"},
]


def network_runs(provisioner):
    """The network states host_networks.yaml was given so far: [(host name, nube_networks)]."""
    return [
        (run.host["name"], run.extravars["nube_networks"])
        for run in provisioner.runs
        if run.playbook == "host_networks.yaml"
    ]


def make_network(api, **fields):
    """Create a network through the API (201): its body."""
    response = api.post("/networks", {**NET1, **fields})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def patch_rules(api, name, rules):
    """PATCH a network's rules: the response."""
    return api.call("PATCH", f"/networks/{name}", {"rules": rules})


def stored_rules(api, name):
    """A network's rules as the API shows them."""
    return api.get(f"/networks/{name}").get_json()["rules"]


@pytest.fixture
def carried(app, admin_api):
    """net1 with a VM on it, so the ready host h1 carries it."""
    gen_prepared_host(app, network="none", data_address="198.18.0.2")
    image = gen_image(app)
    make_network(admin_api)
    body = {"id": "web1", "image": image, "mem": 64, "networks": ["net1"]}
    assert finished(admin_api, admin_api.post("/vms", body))["status"] == "succeeded"
    return "net1"


def test_a_network_has_the_default_rules_or_those_it_is_created_with(admin_api):
    assert make_network(admin_api)["rules"] == DEFAULT_RULES
    texts = ["tcp/80", "tcp/8000-8090 from 10.0.0.0/8", "ICMP from network"]
    made = make_network(admin_api, name="web", cidr="10.30.0.0/24", gateway="", rules=texts)
    assert made["rules"] == WEB
    none = make_network(admin_api, name="shut", cidr="10.40.0.0/24", gateway="", rules=[])
    assert none["rules"] == [] and stored_rules(admin_api, "shut") == []
    listed = admin_api.get("/networks", query_string={"q": "name = web"}).get_json()
    assert listed["items"][0]["rules"] == WEB


def test_patch_replaces_the_rules_and_the_operation_brings_them_to_the_host(
    admin_api, provisioner, carried
):
    before = len(network_runs(provisioner))
    response = patch_rules(admin_api, carried, [*WEB[:2], {"protocol": "udp", "ports": 53}])
    assert response.get_json()["operation"]["kind"] == "network.rules"
    op = finished(admin_api, response)
    assert (op["kind"], op["status"], op["target_name"]) == ("network.rules", "succeeded", "net1")
    assert stored_rules(admin_api, carried) == [
        *WEB[:2],
        {"protocol": "udp", "ports": "53", "source": "any"},
    ]
    runs = network_runs(provisioner)
    assert len(runs) == before + 1
    host, state = runs[-1]
    assert host == "h1" and state["networks"][0]["vni"] == 100
    assert state["networks"][0]["rules"] == [
        {"protocol": "tcp", "ports": [80, 80]},
        {"protocol": "tcp", "ports": [8000, 8090], "source": "10.0.0.0/8"},
        {"protocol": "udp", "ports": [53, 53]},
    ]
    emptied = finished(admin_api, patch_rules(admin_api, carried, []))
    assert emptied["status"] == "succeeded" and stored_rules(admin_api, carried) == []
    assert network_runs(provisioner)[-1][1]["networks"][0]["rules"] == []


@pytest.mark.parametrize(
    ("rules", "said"),
    [
        (["tcp/99999"], "rules[0]: ports must be from 1 to 65535"),
        (["icmp/8"], "rules[0]: ports are for tcp and udp rules, not icmp"),
        (["tcp/22", "gre from any"], "rules[1]: protocol must be one of tcp, udp, icmp, any"),
        (["tcp/22 to any"], "does not read PROTOCOL[/PORT[-PORT]]"),
        ([{"protocol": "tcp", "source": "10.0.0.1/8"}], "source must be any, network or a CIDR"),
        ([{"protocol": "tcp", "port": 22}], "rules[0]: unknown key(s) port"),
        (["tcp/22"] * (RULES_MAX + 1), f"at most {RULES_MAX} rules"),
    ],
)
def test_a_bad_rule_is_refused_with_the_services_message_and_changes_nothing(
    app, admin_api, rules, said
):
    make_network(admin_api)
    with app.app_context(), pytest.raises(core.InvalidInput) as refused:
        core.updateNetwork("net1", {"rules": rules})
    assert said in str(refused.value)
    assert_problem(patch_rules(admin_api, "net1", rules), 422, said)
    created = admin_api.post("/networks", {**NET1, "name": "net2", "rules": rules})
    assert_problem(created, 422, said)
    assert stored_rules(admin_api, "net1") == DEFAULT_RULES
    assert [n["name"] for n in admin_api.get("/networks").get_json()["items"]] == ["net1"]
    assert (
        admin_api.get("/operations", query_string={"q": "kind = network.rules"}).get_json()["total"]
        == 0
    )


def test_a_body_without_rules_or_with_other_keys_is_refused(admin_api):
    make_network(admin_api)
    missing = assert_problem(admin_api.call("PATCH", "/networks/net1", {}), 422)
    assert "rules" in missing["errors"]
    other = admin_api.call("PATCH", "/networks/net1", {"rules": [], "mtu": 9000})
    assert "mtu" in assert_problem(other, 422)["errors"]
    text = assert_problem(patch_rules(admin_api, "net1", "tcp/22"), 422)
    assert "rules" in text["errors"]  # a list, as the schema says
    assert_problem(patch_rules(admin_api, "nope", []), 404, "network nope not found")
    assert stored_rules(admin_api, "net1") == DEFAULT_RULES


# --- members ------------------------------------------------------------------------------


@pytest.fixture
def member(app, admin_api):
    """ana, a member of project alpha (not of beta), with her API client."""
    with app.app_context():
        users.create("ana", "member-password-1", "member", "test")
        for name in ("alpha", "beta"):
            core.addProject({"name": name})
        core.addMember("alpha", "ana")
    return Api(app, make_token(app, "ana"))


def test_a_member_changes_her_projects_vxlan_network(admin_api, member):
    make_network(member, name="mine")  # in alpha, her only project
    op = finished(member, patch_rules(member, "mine", ["tcp/443"]))
    assert (op["status"], op["requested_by"]) == ("succeeded", "ana")
    assert stored_rules(admin_api, "mine") == [{"protocol": "tcp", "ports": "443", "source": "any"}]


def test_a_member_may_not_change_a_bridge_network_nor_another_projects(admin_api, member):
    lan = {"name": "lan", "type": "bridge", "bridge": "br0", "cidr": "10.9.0.0/24", "gateway": ""}
    make_network(admin_api, **lan, project="alpha")
    make_network(admin_api, name="theirs", cidr="10.8.0.0/24", gateway="", project="beta")
    assert member.get("/networks/lan").status_code == 200  # she sees it, as her VMs use it
    assert_problem(patch_rules(member, "lan", []), 403, "members cannot")
    assert_problem(patch_rules(member, "theirs", []), 404, "network theirs not found")
    assert stored_rules(admin_api, "lan") == DEFAULT_RULES
    assert stored_rules(admin_api, "theirs") == DEFAULT_RULES
    op = finished(admin_api, patch_rules(admin_api, "lan", ["any from any"]))
    assert op["status"] == "succeeded"
    assert stored_rules(admin_api, "lan") == [{"protocol": "any", "source": "any"}]


# --- app.core -----------------------------------------------------------------------------


def test_core_update_network_replaces_the_rules_and_returns_the_network(ctx, provisioner):
    gen_prepared_host(ctx, network="none", data_address="198.18.0.2")
    core.addNetwork({**NET1, "rules": ["tcp/22"]})
    core.addVm({"id": "vm1", "image": gen_image(ctx), "mem": 64, "networks": ["net1"]})
    network = core.updateNetwork("net1", {"rules": [{"protocol": "udp", "ports": "60000-61000"}]})
    rules = [{"protocol": "udp", "ports": "60000-61000", "source": "any"}]
    assert network == core.listNetworks("name = net1")[0] and network["rules"] == rules
    assert network_runs(provisioner)[-1][1]["networks"][0]["rules"] == [
        {"protocol": "udp", "ports": [60000, 61000]}
    ]
    for data, said in [
        ({}, "rules is required"),
        ({"rules": None}, "rules must be given"),
        ({"rules": [], "name": "x"}, r"unknown network change field\(s\): name"),
        ("tcp/22", "network change must be a dict"),
    ]:
        with pytest.raises(core.InvalidInput, match=said):
            core.updateNetwork("net1", data)
    with pytest.raises(core.NotFound):
        core.updateNetwork("nope", {"rules": []})
    assert core.listNetworks()[0]["rules"] == rules


# --- the OpenAPI document -----------------------------------------------------------------


def test_the_openapi_document_describes_the_rules(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    patch = spec["paths"]["/api/v1/networks/{name}"]["patch"]
    assert "202" in patch["responses"]
    schemas = spec["components"]["schemas"]
    assert schemas["NetworkUpdate"]["required"] == ["rules"]
    assert schemas["NetworkUpdate"]["properties"]["rules"]["maxItems"] == RULES_MAX
    assert "rules" in schemas["NetworkCreate"]["properties"]
    assert schemas["Network"]["properties"]["rules"]["items"]["$ref"].endswith("/NetworkRule")
    assert schemas["NetworkRule"]["properties"]["protocol"]["enum"] == ["tcp", "udp", "icmp", "any"]
