"""Projects and quotas: the Python API's names, clear refusals that change nothing, usage
counted from the rows, and quotas that hold when many creations arrive at once."""

import re
import sqlite3
import threading

import pytest

from app import core
from app.db import get_db
from app.migrations import MIGRATIONS
from app.migrator import migrate
from app.repositories import users as users_repo
from tests.api_client import Api, assert_problem, make_token
from tests.conftest import csrf_token


@pytest.fixture
def config_overrides():
    """Room on the test driver's one small host for every VM these tests make: quotas, not
    placement, are what refuses here."""
    return {"CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


def test_the_default_project_exists_and_takes_new_vms(ctx, host, image):
    [default] = core.listProjects()
    assert default["name"] == "default"
    assert default["quota"] == {"vms": None, "vcpus": None, "mem": None, "disk": None}
    vm = core.addVm({"id": "v1", "image": image, "mem": 64, "vcpus": 2})
    assert vm["project"] == "default" and vm["disk"] == 1
    [default] = core.listProjects()
    assert default["usage"] == {"vms": 1, "vcpus": 2, "mem": 64, "disk": 1}
    assert [v["id"] for v in core.listVms("project = 'default'")] == ["v1"]


def test_existing_vms_move_into_default_by_migration(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.sqlite", isolation_level=None)
    conn.row_factory = sqlite3.Row
    for number, script in enumerate(MIGRATIONS[:14], start=1):
        conn.executescript(script.replace("-- rebuilds a table", ""))
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(
        "INSERT INTO hosts (name, address, user, state, created_at)"
        " VALUES ('h1', '127.0.0.9', 'root', 'ready', '2026-01-01T00:00:00Z')"
    )
    conn.execute(
        "INSERT INTO vms (id, host_id, image, mem, vcpus, state, created_at)"
        " VALUES ('old', 1, 'base.raw', 64, 1, 'stopped', '2026-01-01T00:00:00Z')"
    )
    conn.execute(
        "INSERT INTO users (username, password_hash, role, created_at)"
        " VALUES ('ann', 'x', 'operator', '2026-01-01T00:00:00Z')"
    )
    # old's own start, an earlier VM old's create (same name, before old existed) and a
    # removed VM's create: only the first becomes visible to default's members
    for target, created in (("old", "2026-02-01"), ("old", "2025-12-01"), ("gone", "2026-02-01")):
        conn.execute(
            "INSERT INTO operations (kind, target_type, target_id, target_name, status,"
            " created_at) VALUES ('vm.start', 'vm', ?, ?, 'succeeded', ?)",
            (target, target, created + "T00:00:00Z"),
        )
    assert migrate(conn) == len(MIGRATIONS)
    projects_of_ops = conn.execute("SELECT project_id FROM operations ORDER BY id").fetchall()
    default_id = conn.execute("SELECT id FROM projects WHERE name = 'default'").fetchone()[0]
    assert [row[0] for row in projects_of_ops] == [default_id, None, None]
    row = conn.execute(
        "SELECT p.name, v.disk FROM vms v JOIN projects p ON p.id = v.project_id"
    ).fetchone()
    assert (row["name"], row["disk"]) == ("default", None)  # measured by the next monitor pass
    assert conn.execute("SELECT role FROM users WHERE username = 'ann'").fetchone()[0] == (
        "operator"
    )
    conn.execute("UPDATE users SET role = 'member' WHERE username = 'ann'")  # the new role


def test_project_crud_and_clear_refusals(ctx, host, image):
    made = core.addProject(
        {"name": "lab", "description": "Networks course", "quota": {"vms": 2, "mem": 512}}
    )
    assert made["quota"] == {"vms": 2, "vcpus": None, "mem": 512, "disk": None}
    assert made["usage"] == {"vms": 0, "vcpus": 0, "mem": 0, "disk": 0}
    refusals = [
        ({"name": "lab"}, "a project named lab already exists"),
        ({"name": "bad name"}, "must start with a letter or digit"),
        ({"name": "x", "quota": {"vms": -1}}, "vms must be at least 0"),
        ({"name": "x", "quota": {"cpus": 1}}, "unknown quota field(s): cpus"),
        ({"name": "x", "colour": "red"}, "unknown project field(s): colour"),
        ({"name": "x", "description": "a\nb"}, "description must be one line"),
    ]
    for data, message in refusals:
        with pytest.raises(core.InvalidInput, match=re.escape(message)):
            core.addProject(data)
    assert [p["name"] for p in core.listProjects()] == ["default", "lab"]

    core.addVm({"id": "v1", "image": image, "mem": 128, "project": "lab"})
    with pytest.raises(core.InvalidInput, match="project lab still has 1 VM"):
        core.removeProject("lab")
    renamed = core.updateProject("lab", {"name": "lab2", "quota": {"mem": None}})
    assert renamed["name"] == "lab2" and renamed["quota"]["mem"] is None
    assert renamed["quota"]["vms"] == 2  # keys not given keep their value
    assert core.listVms("id = 'v1'")[0]["project"] == "lab2"
    for call, message in [
        (lambda: core.removeProject("default"), "the project default cannot be removed"),
        (lambda: core.updateProject("default", {"name": "d"}), "cannot be renamed"),
        (lambda: core.updateProject("nope", {}), "project nope not found"),
    ]:
        with pytest.raises(core.NubeError, match=message):
            call()
    core.removeVm("v1")
    core.removeProject("lab2")
    assert [p["name"] for p in core.listProjects()] == ["default"]


def test_members(ctx):
    users_repo.insert(get_db(), "stu", "x", "member")
    core.addProject({"name": "lab"})
    core.addMember("lab", "stu")
    core.addMember("lab", "stu")  # once is enough: no error, no second row
    assert core.listProjects()[1]["members"] == ["stu"]
    with pytest.raises(core.NotFound, match="user ghost not found"):
        core.addMember("lab", "ghost")
    core.removeMember("lab", "stu")
    with pytest.raises(core.NotFound, match="stu is not a member of project lab"):
        core.removeMember("lab", "stu")


@pytest.mark.parametrize(
    ("quota", "vms", "message"),
    [
        ({"vms": 1}, [64], "VMs: 1 of 1 used, this VM needs 1"),
        ({"vcpus": 3}, [64], "vCPUs: 2 of 3 used, this VM needs 2"),
        ({"mem": 4096}, [3584], "memory: 3,584 of 4,096 MiB used, this VM needs 1,024"),
        ({"disk": 1}, [64], "disk: 1 of 1 GiB used, this VM needs 1"),
    ],
)
def test_a_quota_refusal_names_the_quota_its_usage_and_limit(ctx, host, image, quota, vms, message):
    core.addProject({"name": "lab", "quota": quota})
    for n, mem in enumerate(vms):
        core.addVm({"id": f"v{n}", "image": image, "mem": mem, "vcpus": 2, "project": "lab"})
    expected = re.escape(f"project lab's quota is reached: {message}")
    with pytest.raises(core.InvalidInput, match=expected):
        core.addVm({"id": "extra", "image": image, "mem": 1024, "vcpus": 2, "project": "lab"})
    assert [v["id"] for v in core.listVms("project = lab")] == [f"v{n}" for n in range(len(vms))]


def test_a_quota_lowered_below_usage_refuses_growth_and_deletes_nothing(ctx, host, image):
    core.addProject({"name": "lab"})
    for n in range(3):
        core.addVm({"id": f"v{n}", "image": image, "mem": 64, "project": "lab"})
    lowered = core.updateProject("lab", {"quota": {"vms": 1}})
    assert lowered["usage"]["vms"] == 3 and lowered["quota"]["vms"] == 1
    with pytest.raises(core.InvalidInput, match="VMs: 3 of 1 used"):
        core.addVm({"id": "v9", "image": image, "mem": 64, "project": "lab"})
    assert len(core.listVms("project = lab")) == 3
    core.removeVm("v0")
    core.removeVm("v1")
    with pytest.raises(core.InvalidInput, match="VMs: 1 of 1 used"):
        core.addVm({"id": "v9", "image": image, "mem": 64, "project": "lab"})
    core.removeVm("v2")
    core.addVm({"id": "v9", "image": image, "mem": 64, "project": "lab"})  # room again


def test_an_unknown_project_is_not_found(ctx, host, image):
    with pytest.raises(core.NotFound, match="project nope not found"):
        core.addVm({"id": "v1", "image": image, "mem": 64, "project": "nope"})
    assert core.listVms() == []


@pytest.mark.parametrize(
    ("quota", "sizes", "expect"),
    [
        ({"vms": 5}, [64] * 40, 5),
        # mixed sizes into 1,000 MiB: whatever order they arrive in, usage never passes it
        ({"mem": 1000}, [64, 128, 256, 512] * 10, None),
    ],
)
def test_concurrent_creations_through_the_api_never_pass_a_quota(
    app, host, image, quota, sizes, expect
):
    """40 creations at once (threads, each with its own client and connection): exactly the
    quota's room is taken, the rest refused with the quota's message, usage equals the rows."""
    with app.app_context():
        core.addProject({"name": "lab", "quota": quota})
    token = make_token(app)
    start = threading.Barrier(len(sizes))
    answers = [None] * len(sizes)

    def create(n):
        api = Api(app, token)
        start.wait()
        body = {"id": f"c{n:02d}", "image": image, "mem": sizes[n], "project": "lab"}
        answers[n] = api.post("/vms", body)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(len(sizes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = [n for n, answer in enumerate(answers) if answer.status_code == 202]
    refused = [answer for answer in answers if answer.status_code != 202]
    for answer in refused:
        assert_problem(answer, 409, "project lab's quota is reached")
    with app.app_context():
        rows = core.listVms("project = lab")
        [_, lab] = core.listProjects()
    assert sorted(v["id"] for v in rows) == sorted(f"c{n:02d}" for n in accepted)
    assert lab["usage"]["vms"] == len(rows)
    assert lab["usage"]["mem"] == sum(v["mem"] for v in rows)
    if expect is not None:
        assert len(rows) == expect and len(refused) == len(sizes) - expect
    else:
        assert lab["usage"]["mem"] <= quota["mem"]
        # a refused VM did not fit at the moment it was counted: the room left is below the
        # smallest size that was refused
        smallest_refused = min(sizes[n] for n in range(len(sizes)) if n not in accepted)
        assert quota["mem"] - lab["usage"]["mem"] < smallest_refused


def test_projects_over_the_api(app, admin_client):
    api = Api(app, make_token(app))
    made = api.post("/projects", {"name": "lab", "quota": {"vms": 3}})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["quota"]["vms"] == 3
    assert_problem(api.post("/projects", {"name": "lab"}), 409, "already exists")
    assert_problem(api.post("/projects", {"name": "x", "quota": {"vms": "many"}}), 422)
    changed = api.call("PATCH", "/projects/lab", {"quota": {"vms": 4}}).get_json()
    assert changed["quota"]["vms"] == 4
    assert [p["name"] for p in api.get("/projects").get_json()["items"]] == ["default", "lab"]
    assert api.call("DELETE", "/projects/lab").status_code == 204
    assert_problem(api.get("/projects/lab"), 404, "project lab not found")


def test_only_admins_change_projects(app):
    oper = Api(app, make_token(app, "oper"))
    assert_problem(oper.post("/projects", {"name": "lab"}), 403)
    assert oper.get("/projects").status_code == 200


def test_projects_pages(app, admin_client, operator_client, host, image):
    token = csrf_token(admin_client, "/projects/")
    answer = admin_client.post(
        "/projects/",
        data={"name": "lab", "description": "Course", "quota_vms": "2", "csrf_token": token},
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/projects/lab"
    with app.app_context():
        core.addVm({"id": "v1", "image": image, "mem": 64, "project": "lab"})
    page = admin_client.get("/projects/lab").get_data(as_text=True)
    assert "VMs: 1 of 2 (50%)" in page and "memory: 64 MiB used, no limit" in page
    token = csrf_token(admin_client, "/projects/lab")
    admin_client.post("/projects/lab/members", data={"user": "oper", "csrf_token": token})
    assert 'data-member="oper"' in admin_client.get("/projects/lab").get_data(as_text=True)
    changed = admin_client.post(
        "/projects/lab", data={"name": "lab", "quota_vms": "0", "csrf_token": token}
    )
    assert changed.status_code == 302
    page = admin_client.get("/projects/lab").get_data(as_text=True)
    assert "over the quota: growth refused" in page
    refused = admin_client.post("/projects/lab/remove", data={"csrf_token": token})
    assert refused.status_code == 302
    assert "still has 1 VM" in admin_client.get("/projects/lab").get_data(as_text=True)
    # an operator sees projects but changes none
    assert operator_client.get("/projects/").status_code == 200
    token = csrf_token(operator_client, "/projects/")
    assert (
        operator_client.post("/projects/", data={"name": "x", "csrf_token": token}).status_code
        == 403
    )
    assert (
        operator_client.post("/projects/lab/remove", data={"csrf_token": token}).status_code == 403
    )
