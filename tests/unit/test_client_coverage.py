"""The `nube` client covers the whole API: its route table (app/client/routes.py) against the
app's /api/v1 routes, the parser's commands and the requests each command sends; then the
commands beyond the first set (host show/update/drain, vm migrate/boot-log, image, op
list/cancel, user, token) run in-process against the app served on loopback, as in
test_client.py, each with its output and its error for a bad argument."""

import argparse
import re

import pytest

from app.client import output, routes
from app.client.http import ApiClient
from app.client.parser import build_parser
from app.db import get_db
from app.limits import BOOT_LOG_LINES
from tests.factories import gen_host, gen_operation, gen_vm
from tests.unit import test_client

# test_client.py's fixtures: the client in-process, the served app, logged in with a token
nube = test_client.nube
served = test_client.served
token = test_client.token
logged_in = test_client.logged_in

SEGMENT = re.compile(r"<[^>]+>|\{[^}]*\}")  # a path segment's placeholder, Flask's or the table's
# One run of each command of the table: every one must have one (what it sends is checked)
SAMPLES = {
    "login": ["login", "http://127.0.0.1:1", "--token-stdin"],
    "host list": ["host", "list"],
    "host show": ["host", "show", "h1"],
    "host add": ["host", "add", "192.0.2.1", "--user", "u", "--password-stdin"],
    "host update": ["host", "update", "h1", "--state", "maintenance"],
    "host drain": ["host", "drain", "h1"],
    "host remove": ["host", "remove", "h1", "--drain"],
    "host accept-key": ["host", "accept-key", "h1", "SHA256:abc"],
    "vm list": ["vm", "list"],
    "vm show": ["vm", "show", "web1"],
    "vm create": ["vm", "create", "web1", "--image", "base.raw", "--mem", "64"],
    "vm start": ["vm", "start", "web1"],
    "vm stop": ["vm", "stop", "web1"],
    "vm migrate": ["vm", "migrate", "web1", "--to", "h2"],
    "vm boot-log": ["vm", "boot-log", "web1"],
    "vm resize": ["vm", "resize", "web1", "--mem", "128"],
    "vm save-image": ["vm", "save-image", "web1", "web1.qcow2", "--snapshot", "s1"],
    "vm remove": ["vm", "remove", "web1", "--volumes"],
    "vm snapshots": ["vm", "snapshots", "web1"],
    "vm snapshot": ["vm", "snapshot", "web1", "s1"],
    "vm snapshot-show": ["vm", "snapshot-show", "web1", "s1"],
    "vm revert": ["vm", "revert", "web1", "s1", "--yes"],
    "vm snapshot-remove": ["vm", "snapshot-remove", "web1", "s1", "-y"],
    "volume list": ["volume", "list"],
    "volume show": ["volume", "show", "data1"],
    "volume create": ["volume", "create", "data1", "--size", "1"],
    "volume attach": ["volume", "attach", "data1", "web1"],
    "volume detach": ["volume", "detach", "data1"],
    "volume grow": ["volume", "grow", "data1", "2"],
    "volume remove": ["volume", "remove", "data1"],
    "network list": ["network", "list"],
    "network show": ["network", "show", "net1"],
    "network create": ["network", "create", "net1", "--cidr", "10.20.0.0/24", "--dns", "1.1.1.1"],
    "network rules": ["network", "rules", "net1", "--rule", "tcp/22 from any"],
    "network remove": ["network", "remove", "net1", "--yes"],
    "image list": ["image", "list"],
    "image show": ["image", "show", "base.raw"],
    "image build": ["image", "build", "deb", "--size", "2G"],
    "image import": ["image", "import", "deb", "https://example.org/d.qcow2", "--os", "debian-12"],
    "image remove": ["image", "remove", "base.raw"],
    "image upload": ["image", "upload", "up.raw", __file__],
    "op list": ["op", "list"],
    "op show": ["op", "show", "12"],
    "op cancel": ["op", "cancel", "12"],
    "op retry": ["op", "retry", "12"],
    "op recheck": ["op", "recheck", "12"],
    "project list": ["project", "list"],
    "project show": ["project", "show", "lab"],
    "project create": ["project", "create", "lab", "--vms", "5", "--mem", "4096"],
    "project update": ["project", "update", "lab", "--rename", "lab2"],
    "project remove": ["project", "remove", "lab"],
    "project add-member": ["project", "add-member", "lab", "ana"],
    "project remove-member": ["project", "remove-member", "lab", "ana"],
    "user list": ["user", "list"],
    "user show": ["user", "show", "2"],
    "user remove": ["user", "remove", "2"],
    "token list": ["token", "list"],
    "token revoke": ["token", "revoke", "3"],
}


def shape(path):
    """A path with each placeholder as {}: Flask's rules and the table's compare equal."""
    return SEGMENT.sub("{}", path)


def api_routes(app):
    """Every (method, path under /api/v1) the app answers, placeholders as {}."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = shape(rule.rule.removeprefix("/api/v1")) or "/"
            found.update((method, path) for method in rule.methods - {"HEAD", "OPTIONS"})
    return found


def parser_commands():
    """Every command of the parser, as 'group command' ('login' alone)."""
    found = set()
    for action in build_parser()._subparsers._group_actions:
        for name, sub in action.choices.items():
            groups = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
            found.update(f"{name} {inner}" for group in groups for inner in group.choices)
            if not groups:
                found.add(name)
    return found


def test_every_api_route_has_a_command_or_a_reason(app):
    table = {(method, shape(path)) for method, path in routes.COMMANDS.values()}
    left_out = {(method, shape(path)) for method, path in routes.LEFT_OUT}
    assert not table & left_out
    assert all(reason.strip() for reason in routes.LEFT_OUT.values())
    served_routes = api_routes(app)
    assert sorted(served_routes - table - left_out) == [], (
        "routes no command calls: add a command and its line in app/client/routes.py's "
        "COMMANDS (or the reason in LEFT_OUT)"
    )
    assert sorted((table | left_out) - served_routes) == [], "the table names no such route"
    assert len(table) == len(routes.COMMANDS)  # no two commands call the same route


def test_every_command_of_the_parser_is_in_the_table():
    assert parser_commands() == set(routes.COMMANDS) == set(SAMPLES)


def test_each_command_calls_its_route(nube, monkeypatch):
    sent = []
    answer = {"items": [], "pages": 1, "text": "", "operation": {"id": 12, "status": "pending"}}

    def request(self, method, path, body=None, params=None):
        sent.append((method, path.split("?", 1)[0]))
        return None if method == "DELETE" else answer

    def upload(self, path, handle, size, params=None):
        sent.append(("PUT", path))
        return {"name": "up.raw"}

    monkeypatch.setattr(ApiClient, "request", request)
    monkeypatch.setattr(ApiClient, "upload", upload)
    monkeypatch.setenv("NUBE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("NUBE_TOKEN", "nube_t")
    for command, argv in SAMPLES.items():
        sent.clear()
        run = nube(*argv, stdin="a-secret\n")
        assert run.code == 0, (command, run.err)
        method, path = routes.COMMANDS[command]
        pattern = re.escape(shape(path)).replace(r"\{\}", "[^/]+")
        assert sent and all(
            sent_method == method and re.fullmatch(pattern, sent_path)
            for sent_method, sent_path in sent
        ), (command, sent)


def test_each_commands_help_names_its_route(nube):
    run = nube("vm", "migrate", "--help")
    assert run.code == 0 and "calls POST /api/v1/vms/{vm}/migrate" in run.out


# --- hosts ------------------------------------------------------------------------------


def test_host_show_and_update(nube, logged_in, host):
    shown = nube("host", "show", "h1")
    assert shown.code == 0 and re.search(r"^state: +ready$", shown.out, re.M)
    assert nube("host", "show", "nohost").code == 5
    updated = nube("-o", "json", "host", "update", "h1", "--state", "maintenance", "--name", "h7")
    assert updated.code == 0, updated.err
    assert (updated.json()["name"], updated.json()["state"]) == ("h7", "maintenance")
    refused = nube("host", "update", "h7", "--state", "removing")
    assert refused.code == 3 and "state can only change among" in refused.err
    nothing = nube("host", "update", "h7")
    assert nothing.code == 2 and "nothing to change" in nothing.err
    assert nube("-o", "json", "host", "show", "h7").json()["state"] == "maintenance"


def test_host_update_reads_a_new_password_from_stdin(nube, logged_in, host, provisioner):
    run = nube("host", "update", "h1", "--password-stdin", stdin="new-sudo-pw-1\n")
    assert run.code == 0, run.err
    assert "new-sudo-pw-1" not in run.out + run.err


def test_host_drain_waits_for_its_operation(nube, logged_in, host, image, app):
    gen_vm(app, image)
    run = nube("host", "drain", "h1", "--wait")
    assert run.code == 0, run.err
    assert "host.drain" in run.out and "succeeded" in run.out
    assert nube("-o", "json", "host", "show", "h1").json()["state"] == "maintenance"
    missing = nube("host", "drain", "nohost")
    assert missing.code == 5 and "nohost" in missing.err


# --- VMs --------------------------------------------------------------------------------


def test_vm_migrate_names_its_host_or_lets_placement_pick(nube, logged_in, host, image, app):
    gen_vm(app, image)
    same = nube("vm", "migrate", "vm1", "--to", "h1")
    assert same.code == 6 and "already on host h1" in same.err
    alone = nube("vm", "migrate", "vm1")
    assert alone.code == 3 and "no other host" in alone.err
    gen_host(app, name="h2", address="127.0.0.2")
    unknown = nube("vm", "migrate", "vm1", "--host", "h9")
    assert unknown.code == 3 and "host h9 not found" in unknown.err
    assert nube("vm", "migrate", "novm").code == 5
    started = nube("-o", "json", "vm", "migrate", "vm1")
    assert started.code == 0, started.err
    op = nube("-o", "json", "op", "show", started.json()["operation"]["id"]).json()
    assert (op["kind"], op["target_name"], op["input"]["to_name"]) == ("vm.migrate", "vm1", "h2")


def test_vm_boot_log_prints_its_tail(nube, logged_in, host, image, app):
    gen_vm(app, image)
    empty = nube("vm", "boot-log", "vm1")
    assert empty.code == 0 and empty.out == "" and "empty" in empty.err
    log = app.extensions["nube"].storage.root / "vms" / "vm1.console.log"
    log.write_text("".join(f"line {n}\n" for n in range(10)))
    assert nube("vm", "boot-log", "vm1", "--lines", 2).out == "line 8\nline 9\n"
    assert nube("-o", "json", "vm", "boot-log", "vm1", "--lines", 1).json() == {"text": "line 9"}
    assert nube("vm", "boot-log", "vm1", "--lines", 0).code == 2
    assert nube("vm", "boot-log", "vm1", "--lines", BOOT_LOG_LINES.maximum + 1).code == 3
    assert nube("vm", "boot-log", "novm").code == 5


# --- images -----------------------------------------------------------------------------


def test_image_list_show_and_remove(nube, logged_in, host, image, app):
    table = nube("image", "list").out.splitlines()
    assert table[0].split()[:3] == ["NAME", "FORMAT", "SIZE"] and table[1].startswith(image)
    assert "MiB" in table[1] or "KiB" in table[1]
    shown = nube("-o", "json", "image", "show", image).json()
    assert (shown["name"], shown["vms"]) == (image, 0)
    assert nube("image", "show", "nope.qcow2").code == 5
    gen_vm(app, image)
    used = nube("image", "remove", image)
    assert used.code == 6 and "used by 1 VM" in used.err
    assert nube("vm", "remove", "vm1", "--wait").code == 0
    removed = nube("image", "remove", image)
    assert removed.code == 0 and removed.out == f"image {image} removed\n"
    assert nube("-o", "json", "image", "list").json() == []


def test_image_build_follows_its_operation(nube, logged_in, app, monkeypatch):
    runner = app.extensions["nube"].image_builder.runner
    monkeypatch.setattr(runner, "missing", lambda tools: ["mmdebstrap"])  # fails at once
    bad_size = nube("image", "build", "deb", "--size", "1K")
    assert bad_size.code == 3 and "size" in bad_size.err
    run = nube("image", "build", "deb", "--wait")
    assert run.code == 1 and "image.build" in run.err and "mmdebstrap" in run.out + run.err


# --- operations -------------------------------------------------------------------------


def test_op_list_and_cancel(nube, logged_in, host, image, app):
    gen_vm(app, image)
    listed = nube("-o", "json", "op", "list", "-q", "kind = 'vm.create'").json()
    assert [(op["kind"], op["status"]) for op in listed] == [("vm.create", "succeeded")]
    assert nube("op", "list").out.split()[:4] == ["ID", "KIND", "TARGET", "STATUS"]
    assert nube("op", "list", "-q", "nope = 1").code == 3
    finished = nube("op", "cancel", listed[0]["id"])
    assert finished.code == 6 and "nothing to cancel" in finished.err
    with app.app_context():
        conn = get_db()
        pending = gen_operation(conn, "vm.start", "vm:vm1")
    canceled = nube("op", "cancel", pending)
    assert canceled.code == 0, canceled.err
    assert f"nube op show {pending} --follow" in canceled.out
    assert nube("-o", "json", "op", "show", pending).json()["status"] == "canceled"
    assert nube("op", "cancel", 999999).code == 5
    assert nube("op", "cancel", "zero").code == 2


# --- users and tokens -------------------------------------------------------------------


def test_user_list_show_and_remove(nube, logged_in, app):
    listed = nube("-o", "json", "user", "list").json()
    ids = {user["username"]: user["id"] for user in listed}
    assert set(ids) == {"admin", "oper"}
    assert nube("user", "list").out.split()[:3] == ["ID", "USERNAME", "ROLE"]
    shown = nube("user", "show", ids["oper"])
    assert re.search(r"^role: +operator$", shown.out, re.M)
    myself = nube("user", "remove", ids["admin"])
    assert myself.code == 6 and "your own account" in myself.err
    removed = nube("user", "remove", ids["oper"])
    assert removed.code == 0 and removed.out == f"user {ids['oper']} removed, and their tokens\n"
    assert nube("user", "show", ids["oper"]).code == 5
    assert nube("user", "show", 0).code == 2


def test_an_operators_token_may_not_list_users(nube, served, app):
    operator = test_client.make_token(app, "oper", "oper-cli")
    assert nube("login", served, "--token-stdin", stdin=operator).code == 0
    refused = nube("user", "list")
    assert refused.code == 4 and "admins" in refused.err


def test_token_list_and_revoke(nube, logged_in, app):
    other = test_client.make_token(app, "oper", "oper-cli")
    listed = nube("-o", "json", "token", "list").json()
    by_name = {item["name"]: item for item in listed}
    assert set(by_name) == {"cli", "oper-cli"} and other not in str(listed)
    table = nube("token", "list", "-q", "username = oper").out.splitlines()
    assert table[0].split()[:3] == ["ID", "NAME", "USER"] and len(table) == 2
    revoked = nube("token", "revoke", by_name["oper-cli"]["id"])
    assert revoked.code == 0 and "revoked" in revoked.out
    states = {t["name"]: t["state"] for t in nube("-o", "json", "token", "list").json()}
    assert states == {"cli": "active", "oper-cli": "revoked"}
    assert nube("token", "revoke", 999999).code == 5
    assert nube("token", "revoke", "x").code == 2


@pytest.mark.parametrize("argv", [["image", "list", "-q", "x"], ["user", "list", "-q", "x"]])
def test_lists_that_do_not_filter_take_no_filter(nube, argv):
    assert nube(*argv).code == 2


def test_sizes_are_printed_in_binary_units():
    assert [output.size(v) for v in (512, 1536, 3 << 30, None, "x")] == [
        "512 B", "1.5 KiB", "3.0 GiB", None, "x",
    ]  # fmt: skip


# --- projects ----------------------------------------------------------------------------


def test_project_commands_create_change_and_list_projects(nube, logged_in, app):
    made = nube("-o", "json", "project", "create", "lab", "--vms", "5", "--mem", "4096")
    assert made.code == 0, made.err
    assert made.json()["quota"]["vms"] == 5
    assert nube("project", "add-member", "lab", "admin").code == 0
    listed = nube("project", "list")
    assert listed.code == 0 and "lab" in listed.out and "0/5" in listed.out
    assert nube("project", "update", "lab").code == 2  # nothing to change
    renamed = nube("-o", "json", "project", "update", "lab", "--rename", "lab2", "--vcpus", "8")
    assert renamed.json()["name"] == "lab2" and renamed.json()["quota"]["vcpus"] == 8
    assert nube("project", "show", "lab").code == 5
    assert nube("project", "remove", "lab2").code == 0
    assert "lab2" not in nube("project", "list").out
