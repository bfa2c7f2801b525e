"""The isolation rule on every surface: a member of project alpha, against a VM of project
beta, finds it listed nowhere, gets 404 everywhere (never 403), no console link, no log, no
guest facts, no operation, no count and no filter that reaches it."""

import pytest

from app import core
from app.db import get_db
from app.services import users
from tests.api_client import Api, assert_problem, make_token
from tests.conftest import csrf_token, login

MEMBER, MEMBER_PASSWORD = "ana", "member-password-1"


@pytest.fixture
def config_overrides():
    """Room on the test driver's host for both projects' VMs."""
    return {"CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


@pytest.fixture
def world(app, host, image):
    """Projects alpha (ana is its member, VM mine7) and beta (VM secret9, stopped), each VM made by
    an operation; the ids of secret9's operations."""
    with app.app_context():
        users.create(MEMBER, MEMBER_PASSWORD, "member", "test")
        for name in ("alpha", "beta"):
            core.addProject({"name": name, "quota": {"vms": 5}})
        core.addMember("alpha", MEMBER)
        core.addVm({"id": "mine7", "image": image, "mem": 64, "project": "alpha"})
        core.addVm({"id": "secret9", "image": image, "mem": 64, "project": "beta"})
        core.startVm("secret9")
        core.stopVm("secret9", force=True)
        beta_ops = [
            row["id"]
            for row in get_db().execute("SELECT id FROM operations WHERE target_name = 'secret9'")
        ]
    assert len(beta_ops) == 3
    return {"beta_ops": beta_ops}


@pytest.fixture
def member(app, world):
    """A browser session of the member."""
    client = app.test_client()
    assert login(client, MEMBER, MEMBER_PASSWORD).status_code == 302
    return client


@pytest.fixture
def member_api(app, world):
    """The member's API token client."""
    return Api(app, make_token(app, MEMBER))


def page(client, path):
    """A page's HTML (asserting it answered 200)."""
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code)
    return answer.get_data(as_text=True)


def test_pages_list_only_the_members_projects(member, world):
    listed = page(member, "/vms/")
    assert "mine7" in listed and "secret9" not in listed
    for path in ("/", "/operations/", "/projects/", "/projects/usage"):
        html = page(member, path)
        assert "secret9" not in html and "beta" not in html, path
    assert "beta" not in page(member, "/projects/usage.csv")
    # the create form offers the member's project only, and no host to pick
    form = page(member, "/vms/new")
    assert 'value="alpha"' in form and 'value="beta"' not in form and 'name="host"' not in form


def test_pages_of_another_projects_vm_are_not_found(member, world):
    for path in (
        "/vms/secret9",
        "/vms/secret9/boot-log.json",
        "/vms/secret9/guest.json",
        "/projects/beta",
    ):
        assert member.get(path).status_code == 404, path
    for op_id in world["beta_ops"]:
        for path in (f"/operations/{op_id}", f"/operations/{op_id}/log.json"):
            assert member.get(path).status_code == 404, path
    token = csrf_token(member, "/vms/mine7")
    for action in ("start", "stop", "force-off", "remove", "console"):
        answer = member.post(f"/vms/secret9/{action}", data={"csrf_token": token})
        assert answer.status_code == 404, action
    assert member.post(f"/operations/{world['beta_ops'][0]}/cancel",
                       data={"csrf_token": token}).status_code == 404  # fmt: skip


def test_a_member_sees_no_host_user_or_audit_page(member, world):
    html = page(member, "/")
    for link in ('href="/hosts/"', 'href="/users/"', 'href="/users/audit"'):
        assert link not in html, link
    for path in ("/hosts/", "/users/", "/users/audit"):
        assert member.get(path).status_code == 403, path


def test_the_live_polls_leave_out_what_the_member_cannot_see(member, world):
    vms = member.get("/live/vms?ids=mine7,secret9").get_json()
    assert set(vms["items"]) == {"mine7"} if "items" in vms else "secret9" not in str(vms)
    assert "secret9" not in member.get("/live/vms?ids=secret9").get_data(as_text=True)
    hosts = member.get("/live/hosts?ids=1").get_data(as_text=True)
    assert "127.0.0.1" not in hosts and '"1"' not in hosts
    overview = member.get("/live/overview").get_data(as_text=True)
    assert "secret9" not in overview and "127.0.0.1" not in overview


def test_overview_counts_only_the_members_vms(member, admin_client, world):
    mine = member.get("/live/overview").get_json()
    everything = admin_client.get("/live/overview").get_json()
    assert (mine["totals"]["vms"], everything["totals"]["vms"]) == (1, 2)
    assert sum(mine["vms_by_state"].values()) == 1
    assert mine["totals"]["hosts"] == 0 and not any(mine["hosts_by_state"].values())
    html = page(member, "/")
    assert 'id="card-hosts"' not in html and 'id="card-memory"' not in html
    assert 'id="card-projects"' in html


def test_the_api_lists_and_finds_only_the_members_vms(member_api, world):
    listed = member_api.get("/vms").get_json()
    assert [vm["id"] for vm in listed["items"]] == ["mine7"] and listed["total"] == 1
    assert_problem(member_api.get("/vms/secret9"), 404, "VM secret9 not found")
    assert_problem(member_api.get("/vms/secret9/boot-log"), 404)
    for action in ("start", "stop"):
        assert_problem(member_api.post(f"/vms/secret9/{action}"), 404)
    assert_problem(member_api.call("DELETE", "/vms/secret9"), 404)
    ops = member_api.get("/operations").get_json()["items"]
    assert ops and all(op["target_name"] == "mine7" for op in ops)
    for op_id in world["beta_ops"]:
        assert_problem(member_api.get(f"/operations/{op_id}"), 404)
        assert_problem(member_api.post(f"/operations/{op_id}/cancel"), 404)
    projects = member_api.get("/projects").get_json()["items"]
    assert [p["name"] for p in projects] == ["alpha"]
    assert_problem(member_api.get("/projects/beta"), 404)


@pytest.mark.parametrize(
    "query",
    [
        "project = beta",
        "id = secret9",
        "id = secret9 or id = mine7",
        "project != alpha",
        "secret9",
        "state = stopped or state != stopped",
        "(id = secret9) or 1 = 1",
    ],
)
def test_no_filter_widens_what_a_member_sees(member_api, app, world, query):
    answer = member_api.get("/vms", query_string={"q": query})
    if answer.status_code == 200:
        assert all(vm["id"] == "mine7" for vm in answer.get_json()["items"]), query
    else:
        assert_problem(answer, 400)
    ops = member_api.get("/operations", query_string={"q": "secret9"})
    assert ops.status_code == 200 and ops.get_json()["items"] == []
    with app.app_context(), core.acting_as(MEMBER):
        try:
            found = core.listVms(query)
        except core.InvalidInput:
            return
        assert all(vm["id"] == "mine7" for vm in found), query


def test_the_api_forbids_hosts_users_and_admin_actions_to_members(member_api, world):
    for path in ("/hosts", "/hosts/h1"):
        assert_problem(member_api.get(path), 403, "members cannot see or manage hosts")
    assert_problem(member_api.get("/users"), 403)
    assert_problem(member_api.post("/projects", {"name": "mine"}), 403)
    assert_problem(member_api.post("/images/build", {"name": "x"}), 403)
    tokens = member_api.get("/tokens").get_json()["items"]
    assert {t["username"] for t in tokens} == {MEMBER}


def test_a_member_cannot_create_in_another_project_or_pick_a_host(member_api, app, world):
    body = {"id": "sneak", "image": "base.raw", "mem": 64}
    # another project's name is answered as a name that exists nowhere
    other = member_api.post("/vms", {**body, "project": "beta"})
    nowhere = member_api.post("/vms", {**body, "project": "gamma"})
    assert_problem(other, nowhere.status_code, "project beta not found")
    assert other.get_json()["detail"] == nowhere.get_json()["detail"].replace("gamma", "beta")
    assert_problem(member_api.post("/vms", {**body, "host": "h1"}), 403)
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM vms WHERE id = 'sneak'").fetchone()[0] == 0
    made = member_api.post("/vms", body)  # no project: the member's only one
    assert made.status_code == 202, made.get_json()
    assert member_api.get("/vms/sneak").get_json()["project"] == "alpha"


def test_the_python_api_acting_as_a_member_obeys_the_same_rule(app, world):
    with app.app_context(), core.acting_as(MEMBER):
        assert [vm["id"] for vm in core.listVms()] == ["mine7"]
        assert [p["name"] for p in core.listProjects()] == ["alpha"]
        for call in (core.startVm, core.stopVm, core.removeVm, core.consoleLog):
            with pytest.raises(core.NotFound, match="VM secret9 not found"):
                call("secret9")
        with pytest.raises(core.NubeError, match="members cannot"):
            core.listHosts()
        with pytest.raises(core.NotFound):
            core.addVm({"id": "x1", "image": "base.raw", "mem": 64, "project": "beta"})
        core.startVm("mine7")
    with app.app_context():
        [op] = (
            get_db()
            .execute(
                "SELECT requested_by FROM operations WHERE target_name = 'mine7'"
                " AND kind = 'vm.start'"
            )
            .fetchall()
        )
        assert op["requested_by"] == MEMBER  # the acting user is named on the operation
        assert {vm["id"] for vm in core.listVms()} == {"mine7", "secret9"}  # the system sees all


def test_a_member_removed_from_the_project_loses_it_at_once(member, app, world):
    assert member.get("/vms/mine7").status_code == 200
    with app.app_context():
        core.removeMember("alpha", MEMBER)
    assert member.get("/vms/mine7").status_code == 404
    assert "mine7" not in page(member, "/vms/")


def test_a_console_link_is_only_made_for_the_members_vm(member, app, world):
    token = csrf_token(member, "/vms/mine7")
    refused = member.post("/vms/secret9/console", data={"csrf_token": token})
    assert refused.status_code == 404
