"""/api/v1/volumes and VM resize over HTTP: every route's success (attach and detach with stopped
VMs: the test:/// driver cannot hot-plug into a running domain), the refusals as problem
details, a member's view, the OpenAPI document's enums and bounds, and the same message as
app.core for the same bad input."""

import pytest

from app import core, limits, states
from app.errors import InvalidInput
from app.services import users
from tests.api_client import Api, assert_problem, finished, make_token
from tests.factories import gen_vm


@pytest.fixture
def config_overrides():
    """Room on the test driver's host for a VM grown in memory and vCPUs."""
    return {"CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


def volumes_dir(app):
    """The repository's volumes folder."""
    return app.extensions["nube"].storage.volumes_dir


def make_volume(api, name="data1", size=1, **fields):
    """Create a volume through the API and follow its operation to the end."""
    op = finished(api, api.post("/volumes", {"name": name, "size": size, **fields}))
    assert (op["kind"], op["status"]) == ("volume.create", "succeeded"), op
    return api.get(f"/volumes/{name}").get_json()


def succeeds(api, response, kind):
    """A 202 whose operation (of this kind) succeeded."""
    op = finished(api, response)
    assert (op["kind"], op["status"]) == (kind, "succeeded"), op
    return op


# --- list, create, show, remove ---------------------------------------------------------


def test_create_list_show_and_remove_a_volume(app, admin_api):
    volume = make_volume(admin_api, "data1", 2)
    assert (volume["name"], volume["size"], volume["state"]) == ("data1", 2, "available")
    assert (volume["vm"], volume["serial"], volume["created_by"]) == (None, "data1", "admin")
    assert (volumes_dir(app) / "data1.qcow2").is_file()
    make_volume(admin_api, "data2", 1)
    listed = admin_api.get("/volumes", query_string={"sort": "size", "dir": "desc"}).get_json()
    assert [v["name"] for v in listed["items"]] == ["data1", "data2"]
    assert (listed["total"], listed["pages"]) == (2, 1)
    page = admin_api.get("/volumes", query_string={"per_page": 1, "page": 2}).get_json()
    assert [v["name"] for v in page["items"]] == ["data2"] and page["pages"] == 2
    small = admin_api.get("/volumes", query_string={"q": "size < 2"}).get_json()
    assert [v["name"] for v in small["items"]] == ["data2"]
    assert_problem(admin_api.get("/volumes", query_string={"q": "nope = 1"}), 400)
    assert_problem(admin_api.get("/volumes", query_string={"sort": "format"}), 400, "sort")
    succeeds(admin_api, admin_api.call("DELETE", "/volumes/data1"), "volume.remove")
    assert_problem(admin_api.get("/volumes/data1"), 404, "volume data1 not found")
    assert not (volumes_dir(app) / "data1.qcow2").exists()


def test_a_volume_made_from_an_image(admin_api, image):
    volume = make_volume(admin_api, "fromimg", 1, image=image)
    assert (volume["image"], volume["size"]) == (image, 1)
    response = admin_api.post("/volumes", {"name": "noimg", "size": 1, "image": "nope.raw"})
    assert_problem(response, 422)


def test_a_taken_name_is_409_and_changes_nothing(app, admin_api):
    make_volume(admin_api, "data1", 1)
    assert_problem(admin_api.post("/volumes", {"name": "data1", "size": 3}), 409, "already")
    assert admin_api.get("/volumes/data1").get_json()["size"] == 1


def test_past_the_repositorys_free_space_is_409_and_changes_nothing(app, admin_api, monkeypatch):
    make_volume(admin_api, "data1", 1)
    monkeypatch.setattr(app.extensions["nube"].storage, "free_bytes", lambda: 0)
    assert_problem(admin_api.post("/volumes", {"name": "data2", "size": 1}), 409, "GiB free")
    assert_problem(admin_api.post("/volumes/data1/grow", {"size": 2}), 409, "GiB free")
    assert admin_api.get("/volumes").get_json()["total"] == 1
    assert admin_api.get("/volumes/data1").get_json()["size"] == 1


# --- attach, detach, grow ---------------------------------------------------------------


@pytest.fixture
def stopped_vm(app, host, image):
    """VM vm1, stopped, on the test driver's host."""
    return gen_vm(app, image)


def test_attach_grow_and_detach_on_a_stopped_vm(app, admin_api, stopped_vm):
    make_volume(admin_api, "data1", 1)
    succeeds(admin_api, admin_api.post("/volumes/data1/attach", {"vm": "vm1"}), "volume.attach")
    volume = admin_api.get("/volumes/data1").get_json()
    assert (volume["vm"], volume["state"], volume["target"]) == ("vm1", "in-use", "vdb")
    assert admin_api.get("/volumes", query_string={"q": "vm = vm1"}).get_json()["total"] == 1
    succeeds(admin_api, admin_api.post("/volumes/data1/grow", {"size": 3}), "volume.grow")
    assert admin_api.get("/volumes/data1").get_json()["size"] == 3
    succeeds(admin_api, admin_api.post("/volumes/data1/detach"), "volume.detach")
    volume = admin_api.get("/volumes/data1").get_json()
    assert (volume["vm"], volume["state"], volume["size"]) == (None, "available", 3)


def test_refusals_change_nothing(app, admin_api, stopped_vm):
    make_volume(admin_api, "data1", 2)
    assert_problem(admin_api.post("/volumes/data1/detach"), 409, "not attached")
    succeeds(admin_api, admin_api.post("/volumes/data1/attach", {"vm": "vm1"}), "volume.attach")
    attached = admin_api.get("/volumes/data1").get_json()
    again = admin_api.post("/volumes/data1/attach", {"vm": "vm1"})
    assert_problem(again, 409, "attached to VM vm1: detach it first")
    assert_problem(admin_api.call("DELETE", "/volumes/data1"), 409, "detach it first")
    assert_problem(admin_api.post("/volumes/data1/grow", {"size": 1}), 422, "can only grow")
    assert_problem(admin_api.post("/volumes/data1/grow", {"size": 2}), 422, "can only grow")
    assert "size" in assert_problem(admin_api.post("/volumes/data1/grow", {}), 422)["errors"]
    assert admin_api.get("/volumes/data1").get_json() == attached
    assert (volumes_dir(app) / "data1.qcow2").is_file()


def test_unknown_volumes_are_404_and_unknown_vms_a_bad_body(admin_api, stopped_vm):
    assert_problem(admin_api.get("/volumes/nope"), 404, "volume nope not found")
    for action, body in (("attach", {"vm": "vm1"}), ("detach", {}), ("grow", {"size": 5})):
        assert_problem(admin_api.post(f"/volumes/nope/{action}", body), 404, "nope")
    assert_problem(admin_api.call("DELETE", "/volumes/nope"), 404)
    make_volume(admin_api, "data1", 1)
    assert_problem(admin_api.post("/volumes/data1/attach", {"vm": "novm"}), 422, "novm")
    assert "vm" in assert_problem(admin_api.post("/volumes/data1/attach", {}), 422)["errors"]
    assert admin_api.get("/volumes/data1").get_json()["state"] == "available"


# --- VMs: resize, and removal with or without their volumes --------------------------------


def test_resize_a_stopped_vm(app, admin_api, stopped_vm):
    disk = admin_api.get("/vms/vm1").get_json()["disk"]
    body = {"mem": 128, "vcpus": 2, "disk": disk + 1}
    succeeds(admin_api, admin_api.post("/vms/vm1/resize", body), "vm.resize")
    vm = admin_api.get("/vms/vm1").get_json()
    assert (vm["mem"], vm["vcpus"], vm["disk"]) == (128, 2, disk + 1)
    assert_problem(admin_api.post("/vms/vm1/resize", {}), 422, "nothing to resize")
    assert_problem(admin_api.post("/vms/vm1/resize", {"disk": disk}), 422, "can only grow")
    assert_problem(admin_api.post("/vms/vm1/resize", {"mem": 8}), 422, limits.MEM.too_small)
    assert_problem(admin_api.post("/vms/novm/resize", {"mem": 128}), 404)


def test_a_running_vms_memory_is_refused(app, admin_api, host, image):
    gen_vm(app, image, start=True)
    response = admin_api.post("/vms/vm1/resize", {"mem": 128})
    assert_problem(response, 409, "stop it to change its memory or vCPUs")
    assert admin_api.get("/vms/vm1").get_json()["mem"] == 64


def test_removing_a_vm_keeps_its_volumes_unless_asked(app, admin_api, host, image):
    for vm_id, volume in (("vm1", "keep1"), ("vm2", "gone1")):
        gen_vm(app, image, vm_id=vm_id)
        make_volume(admin_api, volume, 1)
        succeeds(
            admin_api, admin_api.post(f"/volumes/{volume}/attach", {"vm": vm_id}), "volume.attach"
        )
    succeeds(admin_api, admin_api.call("DELETE", "/vms/vm1"), "vm.remove")
    kept = admin_api.get("/volumes/keep1").get_json()
    assert (kept["vm"], kept["state"]) == (None, "available")
    response = admin_api.call("DELETE", "/vms/vm2", query_string={"volumes": "true"})
    succeeds(admin_api, response, "vm.remove")
    assert_problem(admin_api.get("/volumes/gone1"), 404)
    assert not (volumes_dir(app) / "gone1.qcow2").exists()
    assert (volumes_dir(app) / "keep1.qcow2").is_file()
    assert_problem(admin_api.call("DELETE", "/vms/vm9", query_string={"volumes": "x"}), 400)


# --- members ----------------------------------------------------------------------------


def test_a_member_neither_sees_nor_touches_another_projects_volume(app, admin_api, host, image):
    with app.app_context():
        users.create("ana", "member-password-1", "member", "test")
        for name in ("alpha", "beta"):
            core.addProject({"name": name, "quota": {"disk": 10}})
        core.addMember("alpha", "ana")
    make_volume(admin_api, "theirs", 1, project="beta")
    member = Api(app, make_token(app, "ana"))
    make_volume(member, "mine", 1)
    assert member.get("/volumes/mine").get_json()["project"] == "alpha"
    listed = member.get("/volumes").get_json()
    assert [v["name"] for v in listed["items"]] == ["mine"] and listed["total"] == 1
    assert member.get("/volumes", query_string={"q": "name = theirs"}).get_json()["total"] == 0
    assert_problem(member.get("/volumes/theirs"), 404, "volume theirs not found")
    for action, body in (("attach", {"vm": "x"}), ("detach", {}), ("grow", {"size": 2})):
        assert_problem(member.post(f"/volumes/theirs/{action}", body), 404)
    assert_problem(member.call("DELETE", "/volumes/theirs"), 404)
    response = member.post("/volumes", {"name": "sneaky", "size": 1, "project": "beta"})
    assert_problem(response, 422, "project beta not found")  # a body naming what is not there
    assert admin_api.get("/volumes/theirs").get_json()["size"] == 1
    assert_problem(admin_api.get("/volumes/sneaky"), 404)
    gen_vm(app, image, vm_id="secret9", project="beta")  # named, it is still not found
    response = member.post("/volumes/mine/attach", {"vm": "secret9"})
    assert_problem(response, 422, "VM secret9 not found")
    assert member.get("/volumes/mine").get_json()["vm"] is None


# --- one validation path: the API and app.core say the same --------------------------------


def core_message(app, action):
    """The InvalidInput message app.core gives."""
    with app.app_context(), pytest.raises(InvalidInput) as refused:
        action()
    return str(refused.value)


def said(response):
    """A 422's detail and its field messages."""
    body = assert_problem(response, 422)
    errors = body.get("errors") or {}
    return [body["detail"], *(m for messages in errors.values() for m in messages)]


@pytest.mark.parametrize(
    "bad",
    [
        {"size": 0},
        {"size": limits.VOLUME_SIZE.maximum + 1},
        {"name": "../evil"},
        {"name": "n" * (limits.VOLUME_NAME_MAX + 1)},
        {"name": "-dash"},
    ],
    ids=lambda bad: f"{next(iter(bad))}-{str(next(iter(bad.values())))[:8]}",
)
def test_a_bad_volume_is_refused_alike_by_the_api_and_core(app, admin_api, bad):
    volume = {"name": "data1", "size": 1, **bad}
    message = core_message(app, lambda: core.addVolume(volume))
    messages = said(admin_api.post("/volumes", volume))
    assert any(message in text for text in messages), (message, messages)
    assert admin_api.get("/volumes").get_json()["total"] == 0
    assert not list(volumes_dir(app).glob("*"))


@pytest.mark.parametrize("size", [0, limits.VOLUME_SIZE.maximum + 1])
def test_a_bad_new_size_is_refused_alike_by_the_api_and_core(app, admin_api, size):
    make_volume(admin_api, "data1", 1)
    message = core_message(app, lambda: core.growVolume("data1", size))
    messages = said(admin_api.post("/volumes/data1/grow", {"size": size}))
    assert any(message in text for text in messages), (message, messages)


@pytest.mark.parametrize("disk", [0, limits.VOLUME_SIZE.maximum + 1])
def test_a_bad_disk_size_is_refused_alike_by_the_api_and_core(app, admin_api, stopped_vm, disk):
    message = core_message(app, lambda: core.resizeVm("vm1", {"disk": disk}))
    messages = said(admin_api.post("/vms/vm1/resize", {"disk": disk}))
    assert any(message in text for text in messages), (message, messages)


# --- the OpenAPI document ---------------------------------------------------------------


def test_the_openapi_document_describes_volumes(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    volume = schemas["Volume"]["properties"]
    assert volume["state"]["enum"] == list(states.VOLUME.values)
    create = schemas["VolumeCreate"]["properties"]
    size = limits.VOLUME_SIZE
    assert (create["size"]["minimum"], create["size"]["maximum"]) == (size.minimum, size.maximum)
    assert create["name"]["pattern"] == limits.VOLUME_NAME_RE.pattern
    assert create["name"]["maxLength"] == limits.VOLUME_NAME_MAX
    grow = schemas["VolumeGrow"]["properties"]["size"]
    assert (grow["minimum"], grow["maximum"]) == (size.minimum, size.maximum)
    resize = schemas["VmResize"]["properties"]
    assert resize["mem"]["minimum"] == limits.MEM.minimum
    assert resize["disk"]["maximum"] == size.maximum
    paths = spec["paths"]
    for path in ("", "/{name}/attach", "/{name}/detach", "/{name}/grow"):
        assert "post" in paths[f"/api/v1/volumes{path}"], path
    assert "202" in paths["/api/v1/volumes/{name}"]["delete"]["responses"]
    assert "202" in paths["/api/v1/vms/{vm_id}/resize"]["post"]["responses"]
    removal = paths["/api/v1/vms/{vm_id}"]["delete"]["parameters"]
    (volumes,) = [p for p in removal if p["name"] == "volumes"]
    assert volumes["in"] == "query" and "volumes" in volumes["schema"].get("description", "") + (
        volumes.get("description") or ""
    )
