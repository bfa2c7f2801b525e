"""The HTTP API's resources (/api/v1): hosts, VMs, images, operations, users and tokens,
each route's success and error paths."""

import io
import json

import pytest

from app.db import get_db
from app.errors import InvalidInput
from app.repositories import vms as vms_repo
from app.services import audit, images, users
from tests.api_client import API, assert_problem, finished
from tests.conftest import OPERATOR_PASSWORD, csrf_token, login
from tests.factories import gen_host, gen_image, gen_vm

# --- hosts ------------------------------------------------------------------------------


def test_hosts_list_filter_sort_and_page(app, admin_api):
    for number in range(1, 4):
        gen_host(app, name=f"h{number}", address=f"127.0.0.{number}")
    body = admin_api.get("/hosts?sort=name&dir=desc&per_page=2").get_json()
    assert [h["name"] for h in body["items"]] == ["h3", "h2"]
    assert (body["total"], body["pages"], body["page"], body["per_page"]) == (3, 2, 1, 2)
    body = admin_api.get("/hosts", query_string={"q": "name = h2"}).get_json()
    assert [h["name"] for h in body["items"]] == ["h2"] and "password" not in body["items"][0]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ({"q": "name = = x"}, None),
        ({"q": "password = x"}, "password"),
        ({"sort": "password"}, "sort must be one of"),
        ({"per_page": "500"}, "bad query argument"),
        ({"page": "x"}, "bad query argument"),
        ({"dir": "up"}, "bad query argument"),
    ],
)
def test_a_bad_list_query_is_400(admin_api, query, detail):
    assert_problem(admin_api.get("/hosts", query_string=query), 400, detail)


def test_add_show_update_and_remove_a_host(app, admin_api):
    response = admin_api.post(
        "/hosts", {"address": "127.0.0.1", "user": "root", "name": "h1", "prepare": False}
    )
    op = finished(admin_api, response)
    assert op["kind"] == "host.add" and op["status"] == "succeeded"
    assert "password" not in json.dumps(op["input"])
    host = admin_api.get("/hosts/h1").get_json()
    assert host["state"] == "ready" and admin_api.get(f"/hosts/{host['id']}").status_code == 200
    response = admin_api.call("PATCH", "/hosts/h1", {"name": "h2", "state": "maintenance"})
    assert response.status_code == 200 and response.get_json()["state"] == "maintenance"
    op = finished(admin_api, admin_api.call("DELETE", "/hosts/h2"))
    assert op["kind"] == "host.remove" and op["status"] == "succeeded"
    assert_problem(admin_api.get("/hosts/h2"), 404, "host h2 not found")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"user": "root"}, 422, "not valid"),
        ({"address": "127.0.0.1", "user": "root", "colour": "red"}, 422, "not valid"),
        ({"address": "127.0.0.1", "user": "root"}, 422, "password is required"),
        ({"address": "not an address", "user": "root", "prepare": False}, 422, "address"),
        ({"address": "127.0.0.9", "user": "root", "prepare": False, "name": "h1"}, 409, "exists"),
    ],
)
def test_a_bad_host_is_refused_and_changes_nothing(app, admin_api, host, body, status, detail):
    problem = assert_problem(admin_api.post("/hosts", body), status, detail)
    if status == 422 and "not valid" in detail:
        assert problem["errors"]
    assert admin_api.get("/hosts").get_json()["total"] == 1


def test_malformed_json_is_400(admin_api):
    response = admin_api.client.post(
        f"{API}/hosts",
        data="{not json",
        headers={**admin_api.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 400)


def test_a_host_update_that_re_prepares_answers_202(app, admin_api, host):
    response = admin_api.call("PATCH", "/hosts/h1", {"address": "127.0.0.9"})
    op = finished(admin_api, response)
    assert op["kind"] == "host.prepare" and op["input"]["change"] == {"address": "127.0.0.9"}


def test_nobody_resets_their_own_password_through_the_api(admin_api, admin_client):
    me = admin_api.get("/me").get_json()["id"]
    body = {"password": "taken-over-password"}
    session = _session_api(admin_client)
    assert_problem(session("PATCH", f"/users/{me}", body), 409, "Change password")


def test_host_update_conflicts_and_drain(app, admin_api, host, image):
    gen_vm(app, image)
    assert_problem(
        admin_api.call("PATCH", f"/hosts/{host['id']}", {"address": "127.0.0.9"}), 409, "has VMs"
    )
    assert_problem(admin_api.call("PATCH", "/hosts/h1", {"state": "removing"}), 422)
    assert_problem(admin_api.call("PATCH", "/hosts/nope", {"name": "x"}), 404)
    op = finished(admin_api, admin_api.post(f"/hosts/{host['id']}/drain"))
    assert op["kind"] == "host.drain"
    assert op["result"] == {
        "moved": [],
        "stayed": [{"id": "vm1", "reason": op["result"]["stayed"][0]["reason"]}],
    }


# --- VMs --------------------------------------------------------------------------------


def test_vm_lifecycle(app, admin_api, host, image):
    body = {"id": "web1", "image": image, "mem": 64, "ssh_keys": [], "hostname": "web-1"}
    op = finished(admin_api, admin_api.post("/vms", body))
    assert op["status"] == "succeeded" and op["target_name"] == "web1"
    vm = admin_api.get("/vms/web1").get_json()
    assert (vm["state"], vm["host_name"], vm["hostname"]) == ("stopped", "h1", "web-1")
    assert finished(admin_api, admin_api.post("/vms/web1/start"))["status"] == "succeeded"
    listed = admin_api.get("/vms", query_string={"q": "state = running"}).get_json()
    assert [v["id"] for v in listed["items"]] == ["web1"]
    assert_problem(admin_api.post("/vms/web1/start"), 409, "VM web1 is running: cannot start it")
    stop = admin_api.post("/vms/web1/stop", {"force": True})
    assert finished(admin_api, stop)["input"] == {"force": True}
    assert admin_api.get("/vms/web1").get_json()["state"] == "stopped"
    assert admin_api.get("/vms/web1/boot-log?lines=5").get_json() == {"text": ""}
    assert finished(admin_api, admin_api.call("DELETE", "/vms/web1"))["status"] == "succeeded"
    assert_problem(admin_api.get("/vms/web1"), 404, "VM web1 not found")


def test_a_busy_vm_is_409_with_its_operation(app, admin_api, host, image):
    gen_vm(app, image)
    with app.app_context():
        vms_repo.claim_task(get_db(), "vm1", "starting", 7)  # autocommit: no transaction open
    body = assert_problem(admin_api.post("/vms/vm1/start"), 409, "busy: VM vm1 is starting")
    assert body["operation_id"] == 7


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"id": "vm2", "image": "base.raw"}, 422, "not valid"),
        ({"id": "vm2", "image": "base.raw", "mem": "lots"}, 422, "not valid"),
        ({"id": "vm2", "image": "base.raw", "mem": 8}, 422, "mem must be at least 16"),
        ({"id": "bad id", "image": "base.raw", "mem": 64}, 422, None),
        ({"id": "vm2", "image": "missing.qcow2", "mem": 64}, 422, "missing.qcow2"),
        ({"id": "vm1", "image": "base.raw", "mem": 64}, 409, "already exists"),
    ],
)
def test_a_bad_vm_is_refused_and_changes_nothing(app, admin_api, host, image, body, status, detail):
    gen_vm(app, image)
    assert_problem(admin_api.post("/vms", body), status, detail)
    assert admin_api.get("/vms").get_json()["total"] == 1


def test_migrate_to_its_own_host_is_409_and_elsewhere_202(app, admin_api, host, image):
    gen_vm(app, image)
    assert_problem(admin_api.post("/vms/vm1/migrate", {"host": "h1"}), 409, "already on host h1")
    gen_host(app, name="h2", address="127.0.0.2")
    assert_problem(admin_api.post("/vms/vm1/migrate", {"host": "h9"}), 422, "host h9 not found")
    # libvirt's test driver is one hypervisor behind both hosts, so the move itself fails
    # here ("already has a domain"); the integration tier moves VMs between real hosts
    op = finished(admin_api, admin_api.post("/vms/vm1/migrate", {}))
    assert op["kind"] == "vm.migrate" and op["target_name"] == "vm1"
    assert op["input"]["to_name"] == "h2"


def test_vm_actions_on_a_missing_vm_are_404(admin_api):
    for path in ("/vms/nope/start", "/vms/nope/stop", "/vms/nope/migrate"):
        assert_problem(admin_api.post(path), 404, "VM nope not found")
    assert_problem(admin_api.call("DELETE", "/vms/nope"), 404)


# --- images -----------------------------------------------------------------------------


def test_images_list_show_and_delete(app, admin_api, host, image):
    body = admin_api.get("/images").get_json()
    assert [i["name"] for i in body["items"]] == [image] and body["total"] == 1
    assert admin_api.get(f"/images/{image}").get_json()["vms"] == 0
    assert_problem(admin_api.get("/images/nope.qcow2"), 404)
    gen_vm(app, image)
    assert_problem(admin_api.call("DELETE", f"/images/{image}"), 409, "used by 1 VM")
    admin_api.call("DELETE", "/vms/vm1")
    assert admin_api.call("DELETE", f"/images/{image}").status_code == 204
    assert admin_api.get("/images").get_json()["total"] == 0


def test_image_build_refusals(app, admin_api, image):
    assert_problem(admin_api.post("/images/build", {"name": "x", "size": "1K"}), 422, "size")
    assert_problem(admin_api.post("/images/build", {}), 422, "not valid")
    app.extensions["nube"].storage.images_dir.joinpath("deb.qcow2").write_bytes(b"")
    assert_problem(admin_api.post("/images/build", {"name": "deb"}), 409, "already exists")


def test_images_build_is_the_build_action_only(app, admin_api):
    for method in ("GET", "DELETE"):  # never read as an image called "build"
        response = admin_api.call(method, "/images/build")
        assert_problem(response, 405)
        assert "POST" in response.headers["Allow"] and "GET" not in response.headers["Allow"]
    for name in ("build.qcow2", "builder.raw"):  # names that start with it are images
        gen_image(app, name)
        assert admin_api.get(f"/images/{name}").get_json()["name"] == name
    assert admin_api.call("DELETE", "/images/build.qcow2").status_code == 204
    with app.app_context(), pytest.raises(InvalidInput, match="reserved"):
        images.upload("build", io.BytesIO(b""), "", "admin")


# --- operations -------------------------------------------------------------------------


def test_operations_list_show_log_after_and_cancel(app, admin_api, host, image):
    gen_vm(app, image)
    listing = admin_api.get("/operations", query_string={"q": "kind = 'vm.create'"}).get_json()
    assert listing["total"] == 1
    op = listing["items"][0]
    full = admin_api.get(f"/operations/{op['id']}").get_json()
    assert full["log"] and full["done"] and not full["more"]
    last = full["log"][-1]["id"]
    assert admin_api.get(f"/operations/{op['id']}?after={last}").get_json()["log"] == []
    assert_problem(admin_api.post(f"/operations/{op['id']}/cancel"), 409, "nothing to cancel")
    assert_problem(admin_api.get("/operations/999999"), 404)
    assert_problem(admin_api.get("/operations", query_string={"q": "nope = 1"}), 400)


# --- users and tokens -------------------------------------------------------------------


def _session_api(client):
    """An API caller on a logged-in dashboard session: JSON with the page's CSRF token."""
    headers = {"X-CSRFToken": csrf_token(client, "/account/password")}

    def call(method, path, body=None):
        return client.open(API + path, method=method, json=body, headers=headers)

    return call


def test_users_are_for_admins(app, admin_api, operator_api, admin_client):
    for method, path in (("GET", "/users"), ("POST", "/users"), ("DELETE", "/users/1")):
        assert_problem(operator_api.call(method, path, {} if method == "POST" else None), 403)
    session = _session_api(admin_client)
    eve = {"username": "eve", "password": "long-password", "role": "operator"}
    response = session("POST", "/users", eve)
    assert response.status_code == 201 and "password" not in response.get_json()
    new_id = response.get_json()["id"]
    assert_problem(session("POST", "/users", eve), 409, "already exists")
    bob = {"username": "bob", "password": "x", "role": "operator"}
    problem = assert_problem(session("POST", "/users", bob), 422)
    assert problem["errors"] == {"password": ["password must be 8 to 256 characters long"]}
    assert session("PATCH", f"/users/{new_id}", {"role": "admin"}).get_json()["role"] == "admin"
    assert_problem(
        session("PATCH", f"/users/{new_id}", {"role": "admin", "password": "short"}), 422
    )
    me = admin_api.get("/me").get_json()["id"]
    assert_problem(admin_api.call("DELETE", f"/users/{me}"), 409, "your own account")
    assert admin_api.call("DELETE", f"/users/{new_id}").status_code == 204
    assert [u["username"] for u in admin_api.get("/users").get_json()["items"]] == ["admin", "oper"]


def test_an_admin_token_cannot_create_users_or_change_roles_or_passwords(app, admin_api):
    eve = {"username": "eve", "password": "long-password", "role": "admin"}
    assert_problem(admin_api.post("/users", eve), 403, "use the dashboard")
    oper = next(u for u in admin_api.get("/users").get_json()["items"] if u["username"] == "oper")
    for body in ({"role": "admin"}, {"password": "taken-over-pw"}):
        assert_problem(admin_api.call("PATCH", f"/users/{oper['id']}", body), 403, "dashboard")
    users_now = admin_api.get("/users").get_json()["items"]
    assert [(u["username"], u["role"]) for u in users_now] == [
        ("admin", "admin"),
        ("oper", "operator"),
    ]
    assert login(app.test_client(), "oper", OPERATOR_PASSWORD).status_code == 302


def test_a_refused_user_change_changes_nothing(app, admin_client):
    session = _session_api(admin_client)
    with app.app_context():
        users.set_role(2, "admin", "test")  # two admins: the role change alone would pass
        me = next(u.id for u in users.all_users() if u.username == "admin")
    body = {"role": "operator", "password": "a-new-password-1"}
    assert_problem(session("PATCH", f"/users/{me}", body), 409, "Change password")
    with app.app_context():
        assert users.get(me).role == "admin"
        records, _ = audit.page("action = 'user.role'")
    assert [record["actor"] for record in records] == ["test"]  # the setup's change only


@pytest.mark.parametrize("length", [7, 257, 10_000])
def test_a_password_no_login_could_send_is_refused_everywhere(app, admin_client, length):
    session = _session_api(admin_client)
    password = "p" * length
    message = "password must be 8 to 256 characters long"
    created = session(
        "POST", "/users", {"username": "eve", "password": password, "role": "operator"}
    )
    assert assert_problem(created, 422)["errors"] == {"password": [message]}
    patched = session("PATCH", "/users/2", {"password": password})
    assert assert_problem(patched, 422)["errors"] == {"password": [message]}
    with app.app_context():
        for change in (
            lambda: users.create("eve", password, "operator", "cli"),
            lambda: users.reset_password(2, password, "cli"),
            lambda: users.update(2, {"password": password}, "cli"),
            lambda: users.change_password(2, OPERATOR_PASSWORD, password, "oper"),
        ):
            with pytest.raises(InvalidInput, match=message):
                change()
    assert login(app.test_client(), "oper", OPERATOR_PASSWORD).status_code == 302


def test_tokens_admins_see_everyones_operators_their_own(app, admin_api, operator_api):
    everyone = admin_api.get("/tokens").get_json()
    assert sorted(t["username"] for t in everyone["items"]) == ["admin", "oper"]
    own = operator_api.get("/tokens").get_json()
    assert [t["username"] for t in own["items"]] == ["oper"]
    assert all("hash" not in key for key in own["items"][0])
    admin_token = next(t for t in everyone["items"] if t["username"] == "admin")
    assert_problem(operator_api.call("DELETE", f"/tokens/{admin_token['id']}"), 404)
    oper_token = own["items"][0]
    assert admin_api.call("DELETE", f"/tokens/{oper_token['id']}").status_code == 204
    assert_problem(operator_api.get("/tokens"), 401, "revoked")
    assert_problem(admin_api.call("DELETE", f"/tokens/{oper_token['id']}"), 409)
