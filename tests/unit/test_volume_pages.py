"""The volume pages: the Volumes list with its create form and filter, a volume's page, and on
a VM's page the Volumes card (attach, detach, grow), the Resize form and removal with or
without its volumes. Every POST goes to its operation's page; a refusal says why and changes
nothing. Attach and detach run on stopped VMs (libvirt's test driver redefines them; it cannot
hot-plug)."""

import re

import pytest

from app import core
from app.errors import InvalidInput
from app.limits import VOLUME_NAME_MESSAGE
from app.services import volumes
from tests.conftest import csrf_token, login, row
from tests.factories import gen_image, gen_user, gen_vm
from tests.html import page

OPERATION = re.compile(r"/operations/\d+")


def press(client, path, data=None, token_page="/volumes/"):
    """Post a form with the CSRF token a page carries."""
    return client.post(path, data={"csrf_token": csrf_token(client, token_page), **(data or {})})


def add_volume(app, name="data1", size=1, **fields):
    """A volume made through app.core: its dict."""
    with app.app_context():
        return core.addVolume({"name": name, "size": size, **fields})


def volume_row(app, name):
    """A volume's row in the database, or None once it is gone."""
    return row(app, "SELECT id, size, vm_id, target, state, task FROM volumes WHERE id = ?", name)


def listed(client, path="/volumes/"):
    """The volume names of the list's rows, in order."""
    return [tr["data-volume"] for tr in page(client.get(path)).rows(data_volume=True)]


def shown_actions(element):
    """The actions of the forms an element shows (the others are hidden until the state
    allows them)."""
    return [form["action"] for form in element.forms() if not form.has("hidden")]


def operations_count(app):
    """How many operations exist."""
    return row(app, "SELECT COUNT(*) AS n FROM operations")["n"]


def test_the_nav_links_to_volumes_for_every_role(app, admin_client, operator_client):
    member = member_of_lab(app)
    for client in (admin_client, operator_client, member):
        assert page(client.get("/")).link("/volumes/").text == "Volumes"


def test_create_a_volume_from_the_form_then_see_it_listed_and_its_page(app, admin_client):
    doc = page(admin_client.get("/volumes/"))
    assert doc.by_id("empty-state")
    assert [o["value"] for o in doc.options("project")] == ["default"]
    response = press(admin_client, "/volumes/", {"name": "data1", "size": "2", "image": ""})
    assert response.status_code == 302 and OPERATION.fullmatch(response.headers["Location"])
    assert volume_row(app, "data1") == {
        "id": "data1",
        "size": 2,
        "vm_id": None,
        "target": None,
        "state": "available",
        "task": None,
    }
    assert app.extensions["nube"].storage.volume_exists("data1")
    tr = page(admin_client.get("/volumes/")).one("tr", data_volume="data1")
    assert tr.cells()[:3] == ["data1", "2 GiB", "available"]
    assert tr.has_element("span", class_="badge status-available")
    assert shown_actions(tr) == ["/volumes/data1/grow", "/volumes/data1/remove"]  # no Detach
    doc = page(admin_client.get("/volumes/data1"))
    assert doc.by_id("guest-path").text.startswith("/dev/disk/by-id/virtio-data1")
    assert doc.by_id("volume-vm").text == "no VM"
    assert doc.by_id("attach-hint").link("/vms/?q=project+%3D+default")
    assert "volume.create" in doc.by_id("volume-operations").text


def test_create_from_an_image(app, admin_client):
    gen_image(app, "base.qcow2", fmt="qcow2", size="1G")
    doc = page(admin_client.get("/volumes/"))
    assert [o["value"] for o in doc.options("image")] == ["", "base.qcow2"]
    response = press(
        admin_client, "/volumes/", {"name": "copy1", "size": "1", "image": "base.qcow2"}
    )
    assert OPERATION.fullmatch(response.headers["Location"])
    assert page(admin_client.get("/volumes/")).one("tr", data_volume="copy1").cells()[5] == (
        "base.qcow2"
    )


def service_message(action):
    """The InvalidInput message the service gives."""
    with pytest.raises(InvalidInput) as refused:
        action()
    return str(refused.value)


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"name": "bad name", "size": "1"}, VOLUME_NAME_MESSAGE),
        ({"name": "a" * 21, "size": "1"}, VOLUME_NAME_MESSAGE),
        ({"name": "data1", "size": "0"}, "size must be at least 1"),
        ({"name": "data1", "size": "65537"}, "size must be at most 65536"),
    ],
)
def test_bad_input_says_the_services_message_and_changes_nothing(
    app, admin_client, fields, expected
):
    with app.app_context():
        said = service_message(lambda: core.addVolume({**fields, "size": int(fields["size"])}))
    assert expected in said
    before = operations_count(app)
    response = press(admin_client, "/volumes/", fields)
    assert response.status_code == 200
    doc = page(response)
    assert doc.by_id("create-errors").link("#create-volume")
    errors = doc.field_errors()
    assert any(said in error for error in errors), (said, errors)
    assert operations_count(app) == before and volume_row(app, fields["name"]) is None


def test_a_name_taken_is_refused_with_the_services_message(app, admin_client):
    add_volume(app, "data1")
    before = operations_count(app)
    response = press(admin_client, "/volumes/", {"name": "data1", "size": "1"})
    assert page(response).alert("a volume named data1 already exists", "danger")
    assert operations_count(app) == before


def test_the_list_filters_with_the_filter_language(app, admin_client):
    add_volume(app, "small", 1)
    add_volume(app, "big", 3)
    assert listed(admin_client) == ["big", "small"]
    assert listed(admin_client, "/volumes/?q=size+>%3D+2") == ["big"]
    assert listed(admin_client, "/volumes/?q=state+%3D+available+AND+name+LIKE+'sm%25'") == [
        "small"
    ]
    doc = page(admin_client.get("/volumes/?q=size+%3D%3D"))
    assert doc.by_id("filter-error").text.startswith("Invalid filter:")


def test_attach_from_a_stopped_vms_page_then_detach(app, admin_client, host, image):
    gen_vm(app, image, "vm1")
    doc = page(admin_client.get("/vms/vm1"))
    assert doc.by_id("attach-none").link("/volumes/#create-volume")
    assert doc.by_id("attach-form").button().has("disabled")
    add_volume(app, "data1", 2)
    doc = page(admin_client.get("/vms/vm1"))
    assert [o["value"] for o in doc.by_id("attach-form").options("volume")] == ["data1"]

    response = press(admin_client, "/vms/vm1/attach", {"volume": "data1"}, "/vms/vm1")
    assert OPERATION.fullmatch(response.headers["Location"])
    assert volume_row(app, "data1")["vm_id"] == "vm1"
    card = page(admin_client.get("/vms/vm1")).by_id("volumes-card")
    tr = card.one("tr", data_volume="data1")
    assert tr.cells()[:4] == ["data1", "2 GiB", "vdb", "/dev/disk/by-id/virtio-data1"]
    assert shown_actions(tr) == ["/volumes/data1/grow", "/volumes/data1/detach"]
    assert "/volumes/data1/remove" not in tr.actions()  # never offered for an attached one
    assert card.has_element("div", id="attach-none")  # data1 is taken now
    listed_row = page(admin_client.get("/volumes/")).one("tr", data_volume="data1")
    assert listed_row.link("/vms/vm1").text == "vm1" and "vdb" in listed_row.text
    assert shown_actions(listed_row) == ["/volumes/data1/grow", "/volumes/data1/detach"]

    response = press(admin_client, "/volumes/data1/detach", {"back": "vm"}, "/vms/vm1")
    assert OPERATION.fullmatch(response.headers["Location"])
    assert volume_row(app, "data1")["vm_id"] is None
    assert page(admin_client.get("/vms/vm1")).by_id("no-volumes")


def test_a_refused_detach_returns_to_the_page_it_came_from(app, admin_client):
    add_volume(app, "data1")
    response = press(admin_client, "/volumes/data1/detach")
    assert response.headers["Location"] == "/volumes/data1"
    assert page(admin_client.get("/volumes/data1")).alert("is not attached to any VM", "danger")


def test_grow_from_the_list_and_from_the_vm_page(app, admin_client, host, image):
    gen_vm(app, image, "vm1")
    add_volume(app, "data1", 1)
    response = press(admin_client, "/volumes/data1/grow", {"size": "2"})
    assert OPERATION.fullmatch(response.headers["Location"])
    assert volume_row(app, "data1")["size"] == 2
    with app.app_context():
        core.attachVolume("data1", "vm1")
    response = press(admin_client, "/volumes/data1/grow", {"size": "3", "back": "vm"}, "/vms/vm1")
    assert OPERATION.fullmatch(response.headers["Location"])
    assert page(admin_client.get("/vms/vm1")).one("tr", data_volume="data1").cells()[1] == "3 GiB"


def test_a_refused_grow_says_why_and_changes_nothing(app, admin_client, host, image):
    gen_vm(app, image, "vm1")
    add_volume(app, "data1", 2)
    before = operations_count(app)
    response = press(admin_client, "/volumes/data1/grow", {"size": "1"})
    assert response.headers["Location"] == "/volumes/data1"
    doc = page(admin_client.get("/volumes/data1"))
    assert doc.alert("volume data1 is 2 GiB: it can only grow (asked 1 GiB)", "danger")
    with app.app_context():
        core.attachVolume("data1", "vm1")
    before = operations_count(app)
    response = press(admin_client, "/volumes/data1/grow", {"size": "0", "back": "vm"}, "/vms/vm1")
    assert response.headers["Location"] == "/vms/vm1"
    assert page(admin_client.get("/vms/vm1")).alert("size must be at least 1", "danger")
    assert volume_row(app, "data1")["size"] == 2 and operations_count(app) == before


def test_remove_needs_the_typed_name(app, admin_client):
    add_volume(app, "data1")
    response = press(admin_client, "/volumes/data1/remove", {"confirm": "data2"})
    assert response.headers["Location"] == "/volumes/data1"
    assert page(admin_client.get("/volumes/data1")).alert("Type the volume's name (data1)")
    assert volume_row(app, "data1") is not None
    response = press(admin_client, "/volumes/data1/remove", {"confirm": "data1"})
    assert OPERATION.fullmatch(response.headers["Location"])
    assert volume_row(app, "data1") is None
    assert not app.extensions["nube"].storage.volume_exists("data1")
    assert listed(admin_client) == []


def test_a_volume_with_a_task_shows_its_spinner_and_no_actions(app, admin_client):
    add_volume(app, "data1")
    with app.app_context():
        from app.db import get_db
        from app.repositories import volumes as volumes_repo

        assert volumes_repo.claim_task(get_db(), "data1", "growing", None)
    tr = page(admin_client.get("/volumes/")).one("tr", data_volume="data1")
    assert tr.has_element(class_="spinner-border", role="status")
    assert shown_actions(tr) == []
    busy = tr.one("span", data_show_when="busy")
    assert not busy.has("hidden") and busy.text == "growing"


def test_resize_a_stopped_vm_from_its_page(app, admin_client, host, image):
    gen_vm(app, image, "vm1", mem=64)
    form = page(admin_client.get("/vms/vm1")).by_id("resize-form")
    with app.app_context():
        vm = core.listVms("id = vm1")[0]
    assert form.field("mem")["value"] == "64" and form.field("vcpus")["value"] == "1"
    assert form.field("disk")["value"] == str(vm["disk"])
    assert form.text.count("Stopped VMs only.") == 2
    data = {"mem": "128", "vcpus": "2", "disk": str(vm["disk"])}  # the disk unchanged
    response = press(admin_client, "/vms/vm1/resize", data, "/vms/vm1")
    assert OPERATION.fullmatch(response.headers["Location"])
    with app.app_context():
        vm = core.listVms("id = vm1")[0]
    assert (vm["mem"], vm["vcpus"]) == (128, 2)


def test_resize_with_nothing_changed_or_too_little_memory_says_why(app, admin_client, host, image):
    gen_vm(app, image, "vm1", mem=64)
    with app.app_context():
        disk = core.listVms("id = vm1")[0]["disk"]
    before = operations_count(app)
    same = {"mem": "64", "vcpus": "1", "disk": str(disk)}
    response = press(admin_client, "/vms/vm1/resize", same, "/vms/vm1")
    assert response.headers["Location"] == "/vms/vm1"
    assert page(admin_client.get("/vms/vm1")).alert("nothing to resize", "danger")
    press(admin_client, "/vms/vm1/resize", {**same, "mem": "8"}, "/vms/vm1")
    assert page(admin_client.get("/vms/vm1")).alert("mem must be at least 16", "danger")
    assert operations_count(app) == before


def attached(app, image, vm_id="vm1", volume="data1"):
    """A stopped VM with a volume attached."""
    gen_vm(app, image, vm_id)
    add_volume(app, volume)
    with app.app_context():
        core.attachVolume(volume, vm_id)


def test_removing_a_vm_keeps_its_volumes_unless_the_box_is_ticked(app, admin_client, host, image):
    attached(app, image, "vm1", "keep1")
    attached(app, image, "vm2", "drop1")
    form = page(admin_client.get("/vms/vm1")).by_id("remove-form")
    assert form.field("volumes").get("type") == "checkbox" and not form.field("volumes").has(
        "checked"
    )
    note = page(admin_client.get("/vms/vm1")).by_id("remove-volumes-note").text
    assert "Its volumes (keep1) are detached and kept" in note

    response = press(admin_client, "/vms/vm1/remove", {"confirm": "vm1"}, "/vms/vm1")
    assert OPERATION.fullmatch(response.headers["Location"])
    assert volume_row(app, "keep1")["vm_id"] is None
    assert app.extensions["nube"].storage.volume_exists("keep1")

    data = {"confirm": "vm2", "volumes": "y"}
    response = press(admin_client, "/vms/vm2/remove", data, "/vms/vm2")
    assert OPERATION.fullmatch(response.headers["Location"])
    assert volume_row(app, "drop1") is None
    assert not app.extensions["nube"].storage.volume_exists("drop1")
    assert listed(admin_client) == ["keep1"]


def member_of_lab(app):
    """A test client logged in as stu, a member of project lab."""
    gen_user(app, "stu", "stu-password", role="member")
    with app.app_context():
        core.addProject({"name": "lab"})
        core.addMember("lab", "stu")
    client = app.test_client()
    assert login(client, "stu", "stu-password").status_code == 302
    return client


def test_a_member_sees_and_attaches_only_their_projects_volumes(app, host, image):
    member = member_of_lab(app)
    gen_vm(app, image, "mine", project="lab")
    gen_vm(app, image, "theirs")  # in default
    add_volume(app, "labvol", project="lab")
    add_volume(app, "othervol")  # in default
    assert listed(member) == ["labvol"]
    assert member.get("/volumes/othervol").status_code == 404
    assert [o["value"] for o in page(member.get("/volumes/")).options("project")] == ["lab"]
    doc = page(member.get("/vms/mine"))
    assert [o["value"] for o in doc.by_id("attach-form").options("volume")] == ["labvol"]

    before = operations_count(app)
    for vm_id, volume in (("theirs", "labvol"), ("theirs", "othervol")):
        response = press(member, f"/vms/{vm_id}/attach", {"volume": volume})
        assert response.status_code == 404, (vm_id, volume)
    response = press(member, "/vms/mine/attach", {"volume": "othervol"}, "/vms/mine")
    assert response.status_code == 404  # another project's volume is not found
    for action in ("grow", "detach", "remove"):
        data = {"size": "5", "confirm": "othervol"}
        assert press(member, f"/volumes/othervol/{action}", data).status_code == 404
    assert operations_count(app) == before
    with app.app_context():
        assert [v["vm"] for v in volumes.search()] == [None, None]

    response = press(member, "/vms/mine/attach", {"volume": "labvol"}, "/vms/mine")
    assert OPERATION.fullmatch(response.headers["Location"])
    assert volume_row(app, "labvol")["vm_id"] == "mine"


def test_a_members_new_volume_goes_to_their_project(app):
    member = member_of_lab(app)
    response = press(member, "/volumes/", {"name": "mine1", "size": "1", "project": "lab"})
    assert OPERATION.fullmatch(response.headers["Location"])
    with app.app_context():
        assert core.listVolumes("name = mine1")[0]["project"] == "lab"
    response = press(member, "/volumes/", {"name": "mine2", "size": "1", "project": "default"})
    assert response.status_code == 200 and volume_row(app, "mine2") is None


def test_live_volumes_follow_actions(app, admin_client, host, image):
    gen_vm(app, image, "vm1")
    add_volume(app, "data1", 1)
    data = admin_client.get("/live/volumes?ids=data1,nope").get_json()
    assert data["volumes"] == {  # a volume that does not exist is simply absent
        "data1": {
            "state": "available",
            "task": None,
            "task_op": None,
            "size": 1,
            "display": {"size": "1 GiB"},  # as the page shows it
            "bars": {},
        }
    }
    with app.app_context():
        core.attachVolume("data1", "vm1")
        core.growVolume("data1", 2)
    record = admin_client.get("/live/volumes?ids=data1").get_json()["volumes"]["data1"]
    assert (record["state"], record["size"], record["display"]["size"]) == ("in-use", 2, "2 GiB")
    assert admin_client.get("/live/volumes?ids=../x").status_code == 400


def test_a_member_polls_only_their_projects_volumes(app):
    member = member_of_lab(app)
    add_volume(app, "labvol", project="lab")
    add_volume(app, "othervol")
    data = member.get("/live/volumes?ids=labvol,othervol").get_json()
    assert list(data["volumes"]) == ["labvol"]


def test_the_pages_poll_their_volumes_and_carry_the_services_rule(app, admin_client, host, image):
    attached(app, image, "vm1", "data1")
    for path, root_id in (
        ("/volumes/", None),
        ("/volumes/data1", "volume-live"),
        ("/vms/vm1", None),
    ):
        doc = page(admin_client.get(path))
        root = doc.one(data_live=True)
        assert root["data-volumes-url"] == "/live/volumes", path
        assert root_id is None or root.id == root_id
        assert "/static/live.js" in doc.scripts()
        scope = doc.find(data_volume="data1")
        assert scope.one(data_field="size").text == "1 GiB"
        for form in scope.find_all("form", data_show_when=True):
            kind = form["action"].rsplit("/", 1)[1]
            assert form["data-show-when"] == " ".join(volumes.ACTIONS[kind]), (path, kind)


def test_every_volume_route_needs_login(app):
    add_volume(app, "data1")
    client = app.test_client()
    assert client.get("/live/volumes?ids=data1").status_code == 401
    for path in ("/volumes/", "/volumes/data1"):
        assert "/login" in client.get(path).headers["Location"]
    token = csrf_token(client, "/login")
    for action in ("grow", "detach", "remove"):
        data = {"csrf_token": token, "size": "5", "confirm": "data1"}
        response = client.post(f"/volumes/data1/{action}", data=data)
        assert "/login" in response.headers["Location"]
    assert volume_row(app, "data1")["size"] == 1


def test_a_volumes_operation_links_its_volume(app, admin_client):
    response = press(admin_client, "/volumes/", {"name": "data1", "size": "1"})
    doc = page(admin_client.get(response.headers["Location"]))
    assert doc.link("/volumes/data1").text == "data1"


def test_a_polled_volume_is_the_api_volume(app, admin_client, admin_api):
    add_volume(app, "data1", 2)
    record = admin_client.get("/live/volumes?ids=data1").get_json()["volumes"]["data1"]
    api_volume = admin_api.get("/volumes/data1").get_json()
    fields = set(record) - {"display", "bars"}
    assert {key: record[key] for key in fields} == {key: api_volume[key] for key in fields}


def test_a_running_vms_memory_is_refused_and_nothing_changes(app, admin_client, host, image):
    gen_vm(app, image, "vm1", mem=64, start=True)
    before = operations_count(app)
    data = {"mem": "128", "vcpus": "1", "disk": ""}
    response = press(admin_client, "/vms/vm1/resize", data, "/vms/vm1")
    assert response.headers["Location"] == "/vms/vm1"
    doc = page(admin_client.get("/vms/vm1"))
    assert doc.alert("VM vm1 is running: stop it to change its memory or vCPUs", "danger")
    with app.app_context():
        assert core.listVms("id = vm1")[0]["mem"] == 64
    assert operations_count(app) == before


def test_a_volume_past_the_projects_quota_is_refused_with_the_quota(app, admin_client):
    with app.app_context():
        core.addProject({"name": "lab", "quota": {"disk": 3}})
    data = {"name": "big", "size": "4", "project": "lab"}
    response = press(admin_client, "/volumes/", data)
    assert response.status_code == 200
    assert "disk" in page(response).alert("quota", "danger")
    assert volume_row(app, "big") is None
