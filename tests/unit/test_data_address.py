"""A host's data address (issue 20, finding 5): where live migrations reach it, its address
by default, checked like the address, shown and changed through every interface."""

import pytest

from app import core
from app.db import get_db
from tests.api_client import assert_problem
from tests.conftest import csrf_token
from tests.factories import gen_host, gen_vm
from tests.html import page


def test_it_defaults_to_the_address_and_follows_it(ctx):
    host = gen_host(ctx, network="none")
    assert host["data_address"] == "127.0.0.1"
    core.updateHost(host["id"], {"address": "127.0.0.5"})
    assert core.listHosts()[0]["data_address"] == "127.0.0.5"


def test_it_is_set_checked_and_changed_while_the_host_has_vms(ctx, image):
    host = gen_host(ctx, network="none", data_address="10.9.0.1")
    assert core.listHosts("data_address = 10.9.0.1")[0]["address"] == "127.0.0.1"
    gen_vm(ctx, image)
    for bad in ("0.0.0.0", "10.9.0.1,10.9.0.2", "fe80::1%eth0", "127.1"):
        with pytest.raises(core.InvalidInput):
            core.updateHost(host["id"], {"data_address": bad})
        with pytest.raises(core.InvalidInput):
            core.addHost(
                {
                    "address": "127.0.0.7",
                    "user": "root",
                    "prepare": False,
                    "name": "x",
                    "data_address": bad,
                }
            )
    assert core.listHosts()[0]["data_address"] == "10.9.0.1"
    assert [h["name"] for h in core.listHosts()] == ["h1"]
    core.updateHost(host["id"], {"data_address": "FD00::0:2"})  # no re-preparation needed
    assert core.listHosts()[0]["data_address"] == "fd00::2"
    core.updateHost(host["id"], {"data_address": ""})  # back to the address
    assert core.listHosts()[0]["data_address"] == "127.0.0.1"
    assert get_db().execute("SELECT data_address FROM hosts").fetchone()[0] is None


def test_the_edit_form_keeps_a_default_data_address_following(app, admin_client):
    host = gen_host(app, network="none")
    doc = page(admin_client.get(f"/hosts/{host['id']}"))
    assert doc.details()["Data address"].text.strip() == "127.0.0.1"
    form = {
        "name": "h1",
        "user": "root",
        "network": "none",
        "address": "127.0.0.6",
        "share": "nfs",
        "state": "ready",
        "data_address": "127.0.0.1",  # what the form showed
        "csrf_token": csrf_token(admin_client, f"/hosts/{host['id']}/edit"),
    }
    assert admin_client.post(f"/hosts/{host['id']}/edit", data=form).status_code == 302
    with app.app_context():
        assert core.listHosts()[0]["data_address"] == "127.0.0.6"


def test_the_api_shows_and_takes_it(app, admin_api):
    body = {"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h1"}
    assert admin_api.post("/hosts", {**body, "data_address": "10.1.0.1"}).status_code == 202
    assert admin_api.get("/hosts/h1").get_json()["data_address"] == "10.1.0.1"
    response = admin_api.call("PATCH", "/hosts/h1", {"data_address": "10.1.0.2"})
    assert response.status_code == 200 and response.get_json()["data_address"] == "10.1.0.2"
    assert_problem(admin_api.call("PATCH", "/hosts/h1", {"data_address": "::"}), 422, "address")
    schema = admin_api.get("/openapi.json").get_json()["components"]["schemas"]
    assert "data_address" in schema["Host"]["required"]
    assert "data_address" in schema["HostCreate"]["properties"]
