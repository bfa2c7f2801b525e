"""A network's rules on the pages: its page shows them (protocol, ports, source) and, to those
who may change them, a form pre-filled with them as text that replaces them through an
operation (whose page links back to the network); the create form's rules, pre-filled with the
defaults. Bad rules: the form again with the service's message, nothing changed."""

import re

import pytest

from app import core
from app.services import operations
from app.web.networks.forms import RULES_HELP
from tests.conftest import csrf_token, row
from tests.factories import gen_image, gen_prepared_host
from tests.html import page
from tests.unit.test_network_pages import NET1, add_network, member_of_lab, press

OPERATION = re.compile(r"/operations/(\d+)")


def stored_rules(app, name):
    """A network's rules as app.core shows them."""
    with app.app_context():
        return core.listNetworks(f"name = {name}")[0]["rules"]


def rules_operations(app):
    """How many network.rules operations were asked for."""
    return row(app, "SELECT COUNT(*) AS n FROM operations WHERE kind = 'network.rules'")["n"]


def textarea_lines(form):
    """The lines of a form's rules textarea."""
    return form.field("rules").raw_text.strip().splitlines()


def post_rules(client, name, text):
    """Post a network's rules form (with the CSRF token its page carries)."""
    return press(client, f"/networks/{name}/rules", {"rules": text}, f"/networks/{name}")


def test_the_page_shows_the_rules_and_a_form_pre_filled_with_them(app, admin_client):
    add_network(app, rules=["tcp/8000-8090 from 10.0.0.0/8", "icmp from network", "udp"])
    doc = page(admin_client.get("/networks/net1"))
    rows = doc.by_id("network-rules").rows(data_rule=True)
    assert [tr.cells() for tr in rows] == [
        ["tcp", "8000-8090", "10.0.0.0/8"],
        ["icmp", "-", "this network (10.20.0.0/24)"],
        ["udp", "all", "any"],
    ]
    form = doc.by_id("rules-form")
    assert form["action"] == "/networks/net1/rules" and form.field("csrf_token")
    assert textarea_lines(form) == [
        "tcp/8000-8090 from 10.0.0.0/8",
        "icmp from network",
        "udp from any",
    ]
    assert RULES_HELP in form.text  # the syntax, and what an empty list means


def test_the_form_replaces_the_rules_through_an_operation_that_links_back(
    app, admin_client, provisioner
):
    gen_prepared_host(app, network="none", data_address="198.18.0.2")
    add_network(app)
    with app.app_context():
        core.addVm({"id": "web1", "image": gen_image(app), "mem": 64, "networks": ["net1"]})
    response = post_rules(admin_client, "net1", "tcp/80 from any\r\n\r\n  tcp/443\r\n")
    assert response.status_code == 302
    op_id = OPERATION.fullmatch(response.headers["Location"]).group(1)
    doc = page(admin_client.get(response.headers["Location"]))
    assert doc.alert("Applying the rules of network net1.", "info")
    assert doc.link("/networks/net1").text == "net1"  # the operation's target
    assert stored_rules(app, "net1") == [
        {"protocol": "tcp", "ports": "80", "source": "any"},
        {"protocol": "tcp", "ports": "443", "source": "any"},
    ]
    with app.app_context():
        op = operations.get(int(op_id))
    assert (op["kind"], op["status"]) == ("network.rules", "succeeded")
    run = [r for r in provisioner.runs if r.playbook == "host_networks.yaml"][-1]
    assert run.extravars["nube_networks"]["networks"][0]["rules"] == [
        {"protocol": "tcp", "ports": [80, 80]},
        {"protocol": "tcp", "ports": [443, 443]},
    ]
    listed = page(admin_client.get("/operations/"))
    assert listed.one("tr", data_operation_id=op_id).link("/networks/net1")
    assert post_rules(admin_client, "net1", "").status_code == 302  # empty: replies only
    assert stored_rules(app, "net1") == []
    assert page(admin_client.get("/networks/net1")).by_id("no-rules")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("tcp/22\nicmp/8", "rules[1]: ports are for tcp and udp rules, not icmp"),
        ("tcp/22 to any", "does not read PROTOCOL[/PORT[-PORT]]"),
        ("gre", "rules[0]: protocol must be one of tcp, udp, icmp, any"),
    ],
)
def test_bad_rules_show_the_form_again_with_the_message_and_change_nothing(
    app, admin_client, text, said
):
    add_network(app)
    response = post_rules(admin_client, "net1", text)
    assert response.status_code == 200
    doc = page(response)
    assert any(said in error for error in doc.field_errors()), doc.field_errors()
    assert textarea_lines(doc.by_id("rules-form")) == text.splitlines()  # as typed
    assert stored_rules(app, "net1") == [
        {"protocol": "any", "source": "network"},
        {"protocol": "tcp", "ports": "22", "source": "any"},
    ]
    assert rules_operations(app) == 0


def test_the_rules_form_needs_a_csrf_token(app, admin_client):
    add_network(app)
    response = admin_client.post("/networks/net1/rules", data={"rules": "any from any"})
    assert response.status_code == 400
    assert stored_rules(app, "net1")[0] == {"protocol": "any", "source": "network"}


def test_the_create_form_has_the_default_rules_and_takes_others(app, admin_client):
    form = page(admin_client.get("/networks/")).by_id("network-form")
    assert textarea_lines(form) == ["any from network", "tcp/22 from any"]
    fields = {
        **NET1,
        "type": "vxlan",
        "project": "default",
        "rules": "tcp/443\nudp/53 from network",
    }
    assert press(admin_client, "/networks/", fields).status_code == 302
    assert stored_rules(app, "net1") == [
        {"protocol": "tcp", "ports": "443", "source": "any"},
        {"protocol": "udp", "ports": "53", "source": "network"},
    ]
    bad = press(admin_client, "/networks/", {**fields, "name": "net2", "rules": "tcp/70000"})
    assert bad.status_code == 200
    assert any("ports must be from 1 to 65535" in e for e in page(bad).field_errors())
    with app.app_context():
        assert [n["name"] for n in core.listNetworks()] == ["net1"]


def test_a_member_changes_her_vxlan_network_but_only_sees_a_bridge_networks_rules(app):
    member = member_of_lab(app)
    add_network(app, name="mine", project="lab")
    add_network(app, name="lan", type="bridge", bridge="br0", cidr="10.9.0.0/24", gateway="",
                project="lab")  # fmt: skip
    add_network(app, name="theirs", cidr="10.8.0.0/24", gateway="")
    assert page(member.get("/networks/mine")).by_id("rules-form")
    assert post_rules(member, "mine", "tcp/8080").status_code == 302
    assert stored_rules(app, "mine") == [{"protocol": "tcp", "ports": "8080", "source": "any"}]
    lan = page(member.get("/networks/lan"))
    assert lan.by_id("network-rules") and lan.find(id="rules-form") is None
    token = csrf_token(member, "/networks/")
    for text in ("", "gre"):  # a bad form too: no form for her
        refused = member.post("/networks/lan/rules", data={"csrf_token": token, "rules": text})
        assert refused.status_code == 403 and "members cannot" in refused.get_data(as_text=True)
    gone = member.post("/networks/theirs/rules", data={"csrf_token": token, "rules": ""})
    assert gone.status_code == 404
    assert stored_rules(app, "lan")[1] == {"protocol": "tcp", "ports": "22", "source": "any"}
    assert len(stored_rules(app, "theirs")) == 2
