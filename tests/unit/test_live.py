"""Live pages: the /live/ poll endpoints (login, states after actions, ETag) and the pages' hooks."""

import html
import json
import re

import pytest

from app import core
from app.db import get_db
from app.formats import mib, when
from app.repositories import operations as ops_repo
from app.repositories import vms as vms_repo
from app.services import operations
from app.web.helpers import STATUS_COLOURS
from tests.factories import gen_host, gen_operation, gen_vm
from tests.html import page as html_page

API_PATHS = ("/live/vms?ids=vm1", "/live/hosts?ids=1", "/live/overview")


@pytest.fixture
def cluster(app, image):
    """One ready host h1 with two stopped VMs, vm1 (64 MiB, 2 vCPUs) and vm2 (32 MiB)."""
    host = gen_host(app)
    gen_vm(app, image, "vm1", mem=64, vcpus=2, host="h1")
    gen_vm(app, image, "vm2", mem=32, host="h1")
    return host["id"]


def _json(client, path, status=200):
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


@pytest.mark.parametrize("path", API_PATHS)
def test_api_needs_login_and_answers_401_json(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 401
    assert response.get_json() == {"error": "login required"}
    assert "Location" not in response.headers


def test_pages_still_redirect_to_login(app):
    response = app.test_client().get("/vms/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_any_role_may_poll(operator_client, cluster):
    data = _json(operator_client, "/live/vms?ids=vm1")
    assert data["vms"]["vm1"]["state"] == "stopped"


def test_vm_states_follow_actions(app, admin_client, cluster):
    data = _json(admin_client, "/live/vms?ids=vm1,vm2,nope")
    assert set(data["vms"]) == {"vm1", "vm2"}  # a VM that does not exist is simply absent
    last_seen = data["vms"]["vm1"]["last_seen"]
    assert data["vms"]["vm1"] == {
        "state": "stopped",
        "task": None,
        "task_op": None,
        "last_seen": last_seen,
        # each field as the page shows it, formatted by the server's own template filters
        "display": {"last_seen": when(last_seen)},
        "bars": {},
    }
    assert data["ts"]
    with app.app_context():
        core.startVm("vm1")
    data = _json(admin_client, "/live/vms?ids=vm1,vm2")
    assert data["vms"]["vm1"]["state"] == "running" and data["vms"]["vm1"]["task"] is None
    assert data["vms"]["vm1"]["last_seen"]
    assert data["vms"]["vm2"]["state"] == "stopped"

    with app.app_context():  # a task in progress shows with its operation
        op_id = operations.for_target("vm", "vm1")[0]["id"]
        assert vms_repo.claim_task(get_db(), "vm1", "stopping", op_id)
    vm1 = _json(admin_client, "/live/vms?ids=vm1")["vms"]["vm1"]
    assert (vm1["state"], vm1["task"], vm1["task_op"]) == ("running", "stopping", op_id)
    with app.app_context():
        vms_repo.clear_task(get_db(), "vm1")
        core.stopVm("vm1", force=True)
        core.removeVm("vm2")
    data = _json(admin_client, "/live/vms?ids=vm1,vm2")
    assert data["vms"] == {"vm1": {**data["vms"]["vm1"], "state": "stopped", "task": None}}


def test_hosts_capacity_and_state(app, admin_client, cluster):
    data = _json(admin_client, f"/live/hosts?ids={cluster},999")
    assert list(data["hosts"]) == [str(cluster)]
    host = data["hosts"][str(cluster)]
    with app.app_context():
        listed = core.listHosts()[0]
    assert host["state"] == "ready" and host["task"] is None
    assert host["mem"] == listed["mem"] and host["cpus"] == listed["cpus"]
    assert (host["mem_allocated"], host["vcpus_allocated"], host["vm_count"]) == (96, 3, 2)
    # usage bars computed by the server (rounded there), with their amounts as the page reads
    mem_bar = host["bars"]["mem_allocated"]
    assert mem_bar["percent"] == round(100 * 96 / host["mem"])
    assert (mem_bar["used_text"], mem_bar["total_text"]) == ("96 MiB", mib(host["mem"]))
    assert host["bars"]["vcpus_allocated"]["used_text"] == "3"
    assert host["display"]["mem"] == mib(host["mem"])
    assert "free_mem" in host and "last_seen" in host
    with app.app_context():
        core.updateHost(cluster, {"state": "disabled"})
    assert _json(admin_client, f"/live/hosts?ids={cluster}")["hosts"][str(cluster)]["state"] == (
        "disabled"
    )


def test_overview_counts_totals_and_operations(app, admin_client, cluster):
    data = _json(admin_client, "/live/overview")
    assert data["hosts_by_state"]["ready"] == 1
    assert data["vms_by_state"] == {"running": 0, "stopped": 2, "unknown": 0, "error": 0}
    assert data["totals"]["vms"] == 2 and data["totals"]["mem_allocated"] == 96
    assert data["totals"]["vcpus_allocated"] == 3
    kinds = [op["kind"] for op in data["operations"]]
    assert kinds == ["vm.create", "vm.create", "host.add"]  # newest first
    assert set(data["operations"][0]) == {
        "id",
        "kind",
        "status",
        "progress_done",
        "progress_total",
        "progress",
        "target_name",
        "target_type",
        "requested_by",
        "display",
    }
    assert set(data["operations"][0]["display"]) == {"requested_by", "created_at", "duration"}
    assert data["operations"][0]["progress"] == {"percent": 100, "text": "3 of 3 tasks"}
    with app.app_context():
        core.startVm("vm1")
    data = _json(admin_client, "/live/overview")
    assert data["vms_by_state"]["running"] == 1 and data["vms_by_state"]["stopped"] == 1
    assert data["operations"][0]["kind"] == "vm.start"
    assert data["operations"][0]["status"] == "succeeded"


def test_overview_follows_a_running_playbook_beyond_the_recent_ten(app, admin_client, cluster):
    with app.app_context():
        conn = get_db()
        op_id = gen_operation(conn, "host.prepare", f"host:{cluster}", "h1", worker="test-worker")
        ops_repo.set_progress(conn, op_id, 3, 7)
        for _ in range(12):  # newer operations push it out of the recent ten
            core.startVm("vm2")
            core.stopVm("vm2", force=True)
    data = _json(admin_client, "/live/overview")
    running = [op for op in data["operations"] if op["id"] == op_id]
    assert running[0].pop("display")["requested_by"] == "admin"
    assert running == [
        {
            "id": op_id,
            "kind": "host.prepare",
            "status": "running",
            "progress_done": 3,
            "progress_total": 7,
            # the page's script copies these: it computes and rounds nothing itself
            "progress": {"percent": 43, "text": "3 of 7 tasks"},
            "target_name": "h1",
            "target_type": "host",
            "requested_by": "admin",
        }
    ]
    page = admin_client.get("/").get_data(as_text=True)
    assert 'id="live-operations"' in page and 'id="op-item-template"' in page


def test_overview_page_and_live_record_show_the_same_progress(app, admin_client, cluster):
    with app.app_context():
        conn = get_db()
        op_ids = [
            gen_operation(conn, "host.prepare", f"host:{cluster}", "h1", worker="test-worker"),
            gen_operation(conn, "host.prepare", f"host:{cluster}", "h1"),
        ]
        ops_repo.set_progress(conn, op_ids[0], 1, 8)  # 12.5 %: rounded half to even, once
    records = {op["id"]: op for op in _json(admin_client, "/live/overview")["operations"]}
    assert records[op_ids[0]]["progress"] == {"percent": 12, "text": "1 of 8 tasks"}
    assert records[op_ids[1]]["progress"] == {"percent": 100, "text": "waiting for a worker"}
    shown = html_page(admin_client.get("/")).by_id("live-operations")
    for op_id in op_ids:
        item = shown.one("li", data_op_id=str(op_id))
        progress = records[op_id]["progress"]
        assert item.one("div", data_slot="progress").text == progress["text"]
        assert item.one("div", class_="progress")["aria-valuenow"] == str(progress["percent"])


def test_unchanged_poll_is_a_bodiless_304(app, admin_client, cluster):
    first = admin_client.get("/live/vms?ids=vm1,vm2")
    tag = first.headers["ETag"]
    assert first.status_code == 200 and tag
    assert "no-cache" in first.headers["Cache-Control"]
    again = admin_client.get("/live/vms?ids=vm1,vm2", headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == tag
    other = admin_client.get("/live/vms?ids=vm1", headers={"If-None-Match": tag})
    assert other.status_code == 200  # other rows: another answer
    with app.app_context():
        core.startVm("vm1")
    changed = admin_client.get("/live/vms?ids=vm1,vm2", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert changed.get_json()["vms"]["vm1"]["state"] == "running"

    for path in (f"/live/hosts?ids={cluster}", "/live/overview"):
        tag = admin_client.get(path).headers["ETag"]
        assert admin_client.get(path, headers={"If-None-Match": tag}).status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/live/hosts?ids=1,x",
        "/live/hosts?ids=-1",
        "/live/vms?ids=vm1,bad%20id",
        "/live/vms?ids=" + ",".join(f"vm{n}" for n in range(201)),
        "/live/hosts?ids=" + ",".join(str(n) for n in range(1, 202)),
    ],
)
def test_bad_or_too_many_ids_are_refused(admin_client, path):
    data = _json(admin_client, path, status=400)
    assert data["error"]


def test_empty_ids_answer_nothing(admin_client):
    assert _json(admin_client, "/live/vms")["vms"] == {}
    assert _json(admin_client, "/live/hosts?ids=")["hosts"] == {}
    ids = ",".join(f"vm{n}" for n in range(200))  # the cap itself is fine
    assert _json(admin_client, f"/live/vms?ids={ids}")["vms"] == {}


def _live_root(page):
    """The attributes of the page's data-live element."""
    match = re.search(r"<[a-z]+ [^>]*\bdata-live\b[^>]*>", page)
    assert match, "no data-live element"
    return match.group(0)


def _colours(page):
    """The colour table base.html serves the scripts (app/states)."""
    found = re.search(r"<body data-nube-states='([^']*)'>", page)
    return json.loads(html.unescape(found.group(1)))["colours"]


@pytest.mark.parametrize(
    ("path", "urls"),
    [
        ("/", ['data-overview-url="/live/overview"']),
        ("/vms/", ['data-vms-url="/live/vms"']),
        ("/vms/vm1", ['data-vms-url="/live/vms"', 'data-vm-id="vm1"']),
        ("/hosts/", ['data-hosts-url="/live/hosts"']),
        (
            "/hosts/1",
            ['data-hosts-url="/live/hosts"', 'data-vms-url="/live/vms"', 'data-host-id="1"'],
        ),
    ],
)
def test_pages_carry_live_hooks(admin_client, cluster, path, urls):
    page = admin_client.get(path).get_data(as_text=True)
    tag = _live_root(page)
    for url in urls:
        assert url in tag
    assert _colours(page) == STATUS_COLOURS  # colours served once, from app/states
    assert '<script src="/static/live.js">' in page
    assert 'data-field="' in page


def test_vm_pages_render_every_button_in_a_template(admin_client, cluster):
    for path in ("/vms/", "/vms/vm1"):
        page = admin_client.get(path).get_data(as_text=True)
        template = re.search(
            r'<template id="vm-actions-template">(.*?)</template>', page, re.S
        ).group(1)
        assert re.search(
            r'action="/vms/__vm__/start"[^>]*data-show-when="stopped error unknown"', template
        )
        # the same states the services accept (vms.ACTIONS): one rule for both
        assert re.search(
            r'action="/vms/__vm__/stop"[^>]*data-show-when="running unknown error"', template
        )
        assert 'action="/vms/__vm__/force-off"' in template and "data-confirm=" in template
        assert 'data-show-when="busy"' in template
        assert 'name="csrf_token"' in template
        assert 'data-actions data-state="stopped" data-task=""' in page
    assert "data-disable-when-busy" in admin_client.get("/vms/vm1").get_data(as_text=True)


def test_rows_carry_their_ids_and_fields(admin_client, cluster):
    vms_page = admin_client.get("/vms/").get_data(as_text=True)
    row = re.search(r'<tr data-vm-id="vm1">(.*?)</tr>', vms_page, re.S).group(1)
    assert 'data-field="state" data-format="badge"' in row
    assert 'data-field="task" data-format="task"' in row
    assert 'data-field="last_seen"' in row
    hosts_page = admin_client.get("/hosts/").get_data(as_text=True)
    row = re.search(rf'<tr data-host-id="{cluster}">(.*?)</tr>', hosts_page, re.S).group(1)
    assert 'data-bar data-used="mem_allocated" data-total="mem"' in row
    assert 'data-bar data-used="vcpus_allocated" data-total="cpus"' in row
    overview = admin_client.get("/").get_data(as_text=True)
    assert 'data-count-of="vms:stopped">2<' in overview
    assert 'data-count-of="hosts:ready">1<' in overview


def test_pages_without_rows_do_not_poll(admin_client):
    for path in ("/vms/", "/hosts/", "/images/", "/operations/"):
        page = admin_client.get(path).get_data(as_text=True)
        assert "live.js" not in page and "data-live" not in page, path


def test_the_overview_answers_every_operation_since_the_page_loaded(app, admin_client, cluster):
    first = _json(admin_client, "/live/overview")["operations"]
    since = max(op["id"] for op in first)
    with app.app_context():
        for n in range(12):  # more than the recent ten, each done before any poll
            core.addVm({"id": f"quick{n}", "image": "base.raw", "mem": 16})
    answer = _json(admin_client, f"/live/overview?since={since}")["operations"]
    newer = [op for op in answer if op["id"] > since]
    assert len(newer) == 12 and all(op["status"] == "succeeded" for op in newer)
    shown = newer[0]["display"]
    assert shown["created_at"][:2] == "20" and shown["duration"] != "-"
    without = _json(admin_client, "/live/overview")["operations"]
    assert len([op for op in without if op["id"] > since]) == 10  # only the recent ten
