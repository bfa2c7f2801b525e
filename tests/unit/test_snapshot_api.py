"""/api/v1/vms/{vm}/snapshots over HTTP, on a stopped VM of the test driver (qemu-img on real
files): take, list, show, revert and delete, each a 202 followed to its operation; refusals as
problem details that change nothing; a member's view; the OpenAPI document; the same message as
app.core for the same bad name."""

import pytest

from app import core, limits, states
from app.errors import InvalidInput
from app.services import users
from tests.api_client import Api, assert_problem, finished, make_token
from tests.conftest import row
from tests.factories import gen_vm
from tests.unit.test_snapshots import holds, write


@pytest.fixture
def config_overrides():
    """Room on the test driver's one small host for every VM these tests make."""
    return {"CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


@pytest.fixture
def stopped_vm(app, host, image):
    """VM vm1, stopped, on the test driver's host."""
    return gen_vm(app, image)


def disk(app, vm_id="vm1"):
    """A VM's disk file."""
    return app.extensions["nube"].storage.disk_path(vm_id)


def succeeds(api, response, kind):
    """A 202 whose operation (of this kind) succeeded."""
    op = finished(api, response)
    assert (op["kind"], op["status"]) == (kind, "succeeded"), op
    return op


def take(api, name, vm_id="vm1"):
    """Take a snapshot through the API and follow it; the snapshot as the API shows it."""
    succeeds(api, api.post(f"/vms/{vm_id}/snapshots", {"name": name}), "vm.snapshot")
    return api.get(f"/vms/{vm_id}/snapshots/{name}").get_json()


def names(api, vm_id="vm1"):
    """The names the list shows, in order."""
    return [s["name"] for s in api.get(f"/vms/{vm_id}/snapshots").get_json()["items"]]


def test_take_list_show_revert_and_delete(app, admin_api, stopped_vm):
    write(disk(app), "0xaa")
    taken = take(admin_api, "before")
    assert (taken["name"], taken["vm"], taken["state"]) == ("before", "vm1", "ready")
    assert taken["frozen"] is None and taken["volumes"] == [] and taken["size"] > 0
    assert taken["created_by"] == "admin" and taken["created_at"]
    take(admin_api, "second")
    listed = admin_api.get("/vms/vm1/snapshots").get_json()
    assert [s["name"] for s in listed["items"]] == ["before", "second"]
    assert (listed["total"], listed["pages"]) == (2, 1)
    page = admin_api.get("/vms/vm1/snapshots", query_string={"per_page": 1, "page": 2})
    assert [s["name"] for s in page.get_json()["items"]] == ["second"]

    write(disk(app), "0xbb")
    response = admin_api.post("/vms/vm1/snapshots/before/revert")
    assert response.headers["Location"].startswith("/api/v1/operations/")
    succeeds(admin_api, response, "vm.revert")
    assert holds(disk(app), "0xaa")

    succeeds(admin_api, admin_api.call("DELETE", "/vms/vm1/snapshots/before"), "snapshot.remove")
    assert names(admin_api) == ["second"]
    assert_problem(admin_api.get("/vms/vm1/snapshots/before"), 404, "has no snapshot before")


def test_volumes_held_are_listed(app, admin_api, stopped_vm):
    with app.app_context():
        core.addVolume({"name": "data1", "size": 1})
        core.attachVolume("data1", "vm1")
    assert take(admin_api, "with-data")["volumes"] == ["data1"]


def state_of(app, api):
    """What a refusal must leave as it was: the VM's snapshots and its operations."""
    operations = row(app, "SELECT COUNT(*) AS n FROM operations")["n"]
    return api.get("/vms/vm1/snapshots").get_json(), api.get("/vms/vm1").get_json(), operations


def test_refusals_are_problems_and_change_nothing(app, admin_api, stopped_vm):
    take(admin_api, "s1")
    before = state_of(app, admin_api)
    assert_problem(admin_api.post("/vms/vm1/snapshots", {"name": "s1"}), 409, "already has")
    assert_problem(admin_api.post("/vms/vm1/snapshots", {"name": "bad name"}), 422)
    assert "name" in assert_problem(admin_api.post("/vms/vm1/snapshots", {}), 422)["errors"]
    assert_problem(admin_api.post("/vms/vm1/snapshots/s9/revert"), 404, "has no snapshot s9")
    assert_problem(admin_api.call("DELETE", "/vms/vm1/snapshots/s9"), 404, "has no snapshot s9")
    assert_problem(admin_api.get("/vms/nope/snapshots"), 404, "nope")
    assert_problem(admin_api.post("/vms/nope/snapshots", {"name": "x"}), 404, "nope")
    assert state_of(app, admin_api) == before


def test_a_running_vm_is_not_reverted(app, admin_api, host, image):
    gen_vm(app, image)
    take(admin_api, "s1")
    succeeds(admin_api, admin_api.post("/vms/vm1/start"), "vm.start")
    assert_problem(admin_api.post("/vms/vm1/snapshots/s1/revert"), 409, "running")
    assert admin_api.get("/vms/vm1/snapshots/s1").get_json()["state"] == "ready"


def test_a_member_neither_sees_nor_touches_another_projects_snapshots(app, admin_api, image, host):
    with app.app_context():
        users.create("ana", "member-password-1", "member", "test")
        for name in ("alpha", "beta"):
            core.addProject({"name": name})
        core.addMember("alpha", "ana")
    gen_vm(app, image, vm_id="theirs", project="beta")
    gen_vm(app, image, vm_id="mine", project="alpha")
    take(admin_api, "s1", "theirs")
    member = Api(app, make_token(app, "ana"))
    assert take(member, "m1", "mine")["created_by"] == "ana"
    assert names(member, "mine") == ["m1"]
    assert_problem(member.get("/vms/theirs/snapshots"), 404, "theirs")
    assert_problem(member.get("/vms/theirs/snapshots/s1"), 404)
    assert_problem(member.post("/vms/theirs/snapshots", {"name": "x"}), 404)
    assert_problem(member.post("/vms/theirs/snapshots/s1/revert"), 404)
    assert_problem(member.call("DELETE", "/vms/theirs/snapshots/s1"), 404)
    assert names(admin_api, "theirs") == ["s1"]


@pytest.mark.parametrize(
    "name", ["bad name", "x" * (limits.SNAPSHOT_NAME_MAX + 1), "-dash", "../up"]
)
def test_a_bad_name_is_refused_alike_by_the_api_and_core(app, admin_api, stopped_vm, name):
    with app.app_context(), pytest.raises(InvalidInput) as refused:
        core.snapshotVm("vm1", name)
    body = assert_problem(admin_api.post("/vms/vm1/snapshots", {"name": name}), 422)
    messages = [body["detail"], *(m for ms in (body.get("errors") or {}).values() for m in ms)]
    assert any(str(refused.value) in text for text in messages), (refused.value, messages)


def test_the_openapi_document_describes_snapshots(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    snapshot = schemas["Snapshot"]["properties"]
    assert snapshot["state"]["enum"] == list(states.SNAPSHOT.values)
    assert snapshot["name"]["pattern"] == limits.SNAPSHOT_NAME_RE.pattern
    create = schemas["SnapshotCreate"]["properties"]["name"]
    assert create["maxLength"] == limits.SNAPSHOT_NAME_MAX
    paths = spec["paths"]
    base = "/api/v1/vms/{vm_id}/snapshots"
    assert {"get", "post"} <= set(paths[base])
    assert {"get", "delete"} <= set(paths[base + "/{name}"])
    assert "202" in paths[base + "/{name}/revert"]["post"]["responses"]
    assert "202" in paths[base + "/{name}"]["delete"]["responses"]
