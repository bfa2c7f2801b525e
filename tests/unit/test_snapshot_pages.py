"""The VM page's Snapshots card on a stopped VM of the test driver (qemu-img on real files):
take one from the form, see it listed (state, consistency, size, time, volumes held), revert
to it and delete it through pages that say what is lost and want its name typed. Every POST
goes to its operation's page; a refusal says why and changes nothing; a member sees the card
of their projects' VMs only."""

import re

import pytest

from app import core, formats
from app.db import get_db
from app.limits import SNAPSHOT_NAME_MESSAGE
from app.services import snapshots
from tests.conftest import csrf_token, login, row
from tests.factories import gen_user, gen_vm
from tests.html import page
from tests.unit.test_snapshots import holds, write

OPERATION = re.compile(r"/operations/\d+")


@pytest.fixture
def config_overrides():
    """Room on the test driver's one small host for every VM these tests make."""
    return {"CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


@pytest.fixture
def vm1(app, host, image):
    """VM vm1, stopped, on the test driver's host: its disk's path."""
    gen_vm(app, image)
    return app.extensions["nube"].storage.disk_path("vm1")


def press(client, path, data=None, token_page="/vms/vm1"):
    """Post a form with the CSRF token a page carries."""
    return client.post(path, data={"csrf_token": csrf_token(client, token_page), **(data or {})})


def listing(app, vm_id="vm1"):
    """The VM's snapshots as the service lists them."""
    with app.app_context():
        return snapshots.listing(vm_id)


def operations_count(app):
    """How many operations exist."""
    return row(app, "SELECT COUNT(*) AS n FROM operations")["n"]


def card_rows(client, vm_id="vm1"):
    """The Snapshots card's rows: name -> row element."""
    card = page(client.get(f"/vms/{vm_id}")).by_id("snapshots-card")
    return {tr["data-snapshot"]: tr for tr in card.find_all("tr", data_snapshot=True)}


def visible_links(element):
    """The links an element shows (the others wait, hidden, for the VM's state)."""
    return [a.text for a in element.find_all("a") if not a.has("hidden")]


def test_take_a_snapshot_from_the_vm_page_and_see_it_listed(app, admin_client, vm1):
    doc = page(admin_client.get("/vms/vm1"))
    assert doc.by_id("no-snapshots")
    assert not doc.by_id("snapshot-form").button().has("disabled")
    with app.app_context():
        core.addVolume({"name": "data1", "size": 1})
        core.attachVolume("data1", "vm1")
    response = press(admin_client, "/vms/vm1/snapshots", {"name": "before"})
    assert OPERATION.fullmatch(response.headers["Location"])
    [taken] = listing(app)
    assert (taken["name"], taken["state"], taken["volumes"]) == ("before", "ready", ["data1"])

    tr = card_rows(admin_client)["before"]
    cells = tr.cells()
    assert cells[:4] == ["before", "ready", "taken stopped", formats.human_bytes(taken["size"])]
    assert cells[4].startswith(formats.when(taken["created_at"])) and "by admin" in cells[4]
    assert cells[5] == "data1"
    assert visible_links(tr) == ["Revert", "Delete"]  # the VM is stopped
    assert tr.link("/vms/vm1/snapshots/before/revert") and tr.link(
        "/vms/vm1/snapshots/before/delete"
    )


def test_frozen_and_not_frozen_read_as_words(app, admin_client, vm1, monkeypatch):
    # a running VM's snapshot (frozen or not) is the integration tier's: the test driver has
    # no QEMU monitor, so the service's answer is given its frozen flag here
    with app.app_context():
        core.snapshotVm("vm1", "s1")
    real = snapshots.listing
    for frozen, said in ((True, "frozen"), (False, "not frozen")):
        monkeypatch.setattr(
            snapshots, "listing", lambda vm_id, f=frozen: [{**s, "frozen": f} for s in real(vm_id)]
        )
        assert card_rows(admin_client)["s1"].cells()[2] == said


def test_a_bad_or_taken_name_says_why_and_changes_nothing(app, admin_client, vm1):
    press(admin_client, "/vms/vm1/snapshots", {"name": "s1"})
    before = operations_count(app)
    response = press(admin_client, "/vms/vm1/snapshots", {"name": "bad name"})
    assert response.headers["Location"] == "/vms/vm1"
    assert any(
        SNAPSHOT_NAME_MESSAGE in alert for alert in page(admin_client.get("/vms/vm1")).alerts()
    )
    press(admin_client, "/vms/vm1/snapshots", {"name": "s1"})
    page(admin_client.get("/vms/vm1")).alert("already has a snapshot s1")
    assert operations_count(app) == before and [s["name"] for s in listing(app)] == ["s1"]


def test_revert_shows_what_is_lost_and_wants_the_name_typed(app, admin_client, vm1):
    write(vm1, "0xaa")
    press(admin_client, "/vms/vm1/snapshots", {"name": "before"})
    write(vm1, "0xbb")
    path = "/vms/vm1/snapshots/before/revert"
    doc = page(admin_client.get(path))
    assert "Everything written to them since the snapshot is lost" in doc.by_id("what-is-lost").text
    assert not doc.by_id("snapshot-confirm-form").button().has("disabled")
    before = operations_count(app)
    response = press(admin_client, path, {"confirm": "wrong"}, path)
    assert response.status_code == 200
    page(response).alert("Type the snapshot's name (before) to confirm")
    assert operations_count(app) == before and holds(vm1, "0xbb")

    response = press(admin_client, path, {"confirm": "before"}, path)
    assert OPERATION.fullmatch(response.headers["Location"])
    assert holds(vm1, "0xaa")
    assert [s["name"] for s in listing(app)] == ["before"]  # the snapshot stays


def test_delete_keeps_the_vms_data(app, admin_client, vm1):
    press(admin_client, "/vms/vm1/snapshots", {"name": "old"})
    write(vm1, "0xcc")
    path = "/vms/vm1/snapshots/old/delete"
    assert "keeps its data" in page(admin_client.get(path)).by_id("what-is-lost").text
    response = press(admin_client, path, {"confirm": "old"}, path)
    assert OPERATION.fullmatch(response.headers["Location"])
    assert listing(app) == [] and holds(vm1, "0xcc")
    assert page(admin_client.get("/vms/vm1")).by_id("no-snapshots")


def test_a_running_vm_offers_delete_but_no_revert(app, admin_client, vm1):
    press(admin_client, "/vms/vm1/snapshots", {"name": "s1"})
    with app.app_context():
        core.startVm("vm1")
    tr = card_rows(admin_client)["s1"]
    assert visible_links(tr) == ["Delete"]
    revert = tr.find("a", text="Revert")
    assert revert["data-show-when"] == " ".join(snapshots.ACTIONS["revert"])  # live.js's rule
    assert page(admin_client.get("/vms/vm1")).by_id("revert-hint")
    path = "/vms/vm1/snapshots/s1/revert"
    doc = page(admin_client.get(path))
    assert "stop it first" in doc.by_id("not-now").text
    assert doc.by_id("snapshot-confirm-form").button().has("disabled")
    before = operations_count(app)
    response = press(admin_client, path, {"confirm": "s1"}, path)
    assert response.headers["Location"] == "/vms/vm1"
    page(admin_client.get("/vms/vm1")).alert("running")
    assert operations_count(app) == before


def test_unknown_snapshots_and_actions_are_404(app, admin_client, vm1):
    assert admin_client.get("/vms/vm1/snapshots/nope/revert").status_code == 404
    assert (
        press(admin_client, "/vms/vm1/snapshots/nope/delete", {"confirm": "nope"}).status_code
        == 404
    )
    assert admin_client.get("/vms/vm1/snapshots/nope/start").status_code == 404
    assert press(admin_client, "/vms/novm/snapshots", {"name": "x"}).status_code == 404


def test_a_member_sees_snapshots_of_their_projects_vms_only(app, host, image):
    gen_user(app, "stu", "stu-password", role="member")
    with app.app_context():
        core.addProject({"name": "lab"})
        core.addMember("lab", "stu")
    gen_vm(app, image, "mine", project="lab")
    gen_vm(app, image, "theirs")  # in default
    with app.app_context():
        core.snapshotVm("theirs", "s1")
    member = app.test_client()
    assert login(member, "stu", "stu-password").status_code == 302
    before = operations_count(app)
    assert member.get("/vms/theirs/snapshots/s1/revert").status_code == 404
    for path, data in (
        ("/vms/theirs/snapshots", {"name": "x"}),
        ("/vms/theirs/snapshots/s1/revert", {"confirm": "s1"}),
        ("/vms/theirs/snapshots/s1/delete", {"confirm": "s1"}),
    ):
        assert press(member, path, data, "/vms/mine").status_code == 404, path
    assert operations_count(app) == before
    response = press(member, "/vms/mine/snapshots", {"name": "m1"}, "/vms/mine")
    assert OPERATION.fullmatch(response.headers["Location"])
    assert list(card_rows(member, "mine")) == ["m1"]


def test_every_snapshot_route_needs_login(app, vm1):
    client = app.test_client()
    assert "/login" in client.get("/vms/vm1/snapshots/s1/revert").headers["Location"]
    token = csrf_token(client, "/login")
    response = client.post("/vms/vm1/snapshots", data={"csrf_token": token, "name": "s1"})
    assert "/login" in response.headers["Location"]
    assert listing(app) == []


def test_the_vms_new_tasks_have_labels_for_the_live_page(admin_client, vm1):
    served = page(admin_client.get("/vms/vm1")).one("body")["data-nube-states"]
    for task in ("snapshotting", "reverting", "deleting-snapshot"):
        assert f'"{task}"' in served


def test_a_snapshot_being_deleted_offers_nothing(app, admin_client, vm1):
    press(admin_client, "/vms/vm1/snapshots", {"name": "s1"})
    with app.app_context():
        get_db().execute("UPDATE snapshots SET state = ?", ("removing",))
    assert visible_links(card_rows(admin_client)["s1"]) == []
    for action in ("revert", "delete"):
        doc = page(admin_client.get(f"/vms/vm1/snapshots/s1/{action}"))
        assert "The snapshot is removing" in doc.by_id("not-now").text, action
        assert doc.by_id("snapshot-confirm-form").button().has("disabled")
