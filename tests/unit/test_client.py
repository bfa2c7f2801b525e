"""The `nube` client against the real app served over HTTP on loopback (a werkzeug server in a
thread, QUEUE=immediate and the recording provisioner, so operations end at once), run
in-process through main([...]) with its own settings folder. Its parts on their own are in
test_client_parts.py."""

import io
import json
import re
import threading
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

from app.client.main import main
from app.db import get_db
from app.repositories import operations as ops_repo
from app.repositories import users as users_repo
from tests.factories import gen_operation, gen_vm, make_ssh_key
from tests.processes import free_port
from tests.unit.test_client_parts import HOSTILE, INVISIBLE


@dataclass
class Run:
    """What one run of the client gave: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    def json(self):
        """stdout as JSON."""
        return json.loads(self.out)


class Terminal(io.StringIO):
    """Standard input that is a terminal."""

    def isatty(self):
        """It is."""
        return True


@pytest.fixture
def nube(tmp_path, monkeypatch, capsys):
    """nube(*argv, stdin=..., typed=...) -> Run: the client in-process, its settings under a
    temp XDG_CONFIG_HOME; `typed` is what getpass returns (no prompt may happen otherwise)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NUBE_URL", raising=False)
    monkeypatch.delenv("NUBE_TOKEN", raising=False)

    def run(*argv, stdin="", typed=None):
        def getpass(prompt):
            if typed is None:
                raise EOFError(f"unexpected prompt: {prompt}")
            return typed

        monkeypatch.setattr("getpass.getpass", getpass)
        # something typed means a terminal: a pipe is read as such, without a prompt
        monkeypatch.setattr("sys.stdin", (Terminal if typed is not None else io.StringIO)(stdin))
        capsys.readouterr()
        code = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def served(app):
    """The app on a real HTTP server on 127.0.0.1 (a free port), in a thread: its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def make_token(app, username="admin", name="cli"):
    """A raw API token of a user, made through the tokens service."""
    from app.services import tokens, users

    with app.app_context():
        user = users.get(users_repo.by_username(get_db(), username)["id"])
        return tokens.create(user, name, None, "test")[1]


@pytest.fixture
def token(app):
    """An admin's raw API token."""
    return make_token(app)


@pytest.fixture
def logged_in(nube, served, token):
    """The client logged in to the served app: its URL."""
    assert nube("login", served, "--token-stdin", stdin=token + "\n").code == 0
    return served


def settings_file(tmp_path):
    """Where the client keeps its settings in these tests."""
    return tmp_path / "xdg" / "nube" / "config.json"


def test_login_checks_the_token_and_saves_it_in_a_0600_file(nube, served, token, tmp_path):
    run = nube("login", served, "--token-stdin", stdin=token + "\n")
    assert run.code == 0, run.err
    assert "admin" in run.out and token not in run.out + run.err
    path = settings_file(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(path.read_text()) == {"url": served, "token": token}
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temp file left
    assert nube("vm", "list").code == 0


def test_login_takes_the_token_from_a_prompt_or_nube_token(nube, served, token, monkeypatch):
    assert nube("login", served + "/api/v1/", typed=token).code == 0
    monkeypatch.setenv("NUBE_TOKEN", token)
    assert nube("-o", "json", "login", served).json()["username"] == "admin"


def test_a_bad_token_is_exit_4_and_saves_nothing(nube, served, tmp_path):
    for bad in ("nube_" + "x" * 43, "not-a-token"):
        run = nube("login", served, "--token-stdin", stdin=bad)
        assert run.code == 4, run.err
        assert bad not in run.out + run.err
    assert not settings_file(tmp_path).exists()


def test_host_add_waits_for_its_operation_and_the_host_is_listed(nube, logged_in, provisioner):
    run = nube(
        "host", "add", "127.0.0.2", "--user", "ops", "--name", "h2", "--password-stdin", "--wait",
        "--data-address", "10.7.0.2", stdin="sudo-password-1\n",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "[recording] host_add.yaml on 127.0.0.2" in run.out and "succeeded" in run.out
    assert "sudo-password-1" not in run.out + run.err
    assert [r.had_password for r in provisioner.runs if r.playbook == "host_add.yaml"] == [True]
    table = nube("host", "list").out.splitlines()
    assert table[0].split()[:4] == ["ID", "NAME", "ADDRESS", "STATE"]
    assert table[1].split()[1:4] == ["h2", "127.0.0.2", "ready"]
    hosts = nube("host", "list", "-q", "name = h2", "-o", "json").json()
    assert [(h["name"], h["state"], h["data_address"]) for h in hosts] == [
        ("h2", "ready", "10.7.0.2")
    ]


def test_a_failed_host_add_is_exit_1_with_its_error(nube, logged_in, provisioner):
    provisioner.fail["host_add.yaml"] = "sudo refused the password"
    run = nube("host", "add", "127.0.0.3", "--user", "ops", "--wait", typed="wrong-pw-1")
    assert run.code == 1
    assert "failed" in run.err and "sudo refused the password" in run.out + run.err


def test_host_remove_waits_and_an_unknown_host_is_exit_5(nube, logged_in, host):
    assert nube("host", "remove", "nohost").code == 5
    run = nube("host", "remove", host["name"], "--wait")
    assert run.code == 0, run.err
    assert nube("-o", "json", "host", "list").json() == []


def test_a_vm_is_created_started_listed_stopped_and_removed(nube, logged_in, host, image, tmp_path):
    key, _ = make_ssh_key(tmp_path)
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\npackages: [nginx]\n")
    run = nube(
        "vm", "create", "web1", "--image", image, "--mem", 64, "--hostname", "web1.lab",
        "--ssh-key", tmp_path / "id_ed25519.pub", "--user-data", user_data, "--start", "--wait",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "succeeded" in run.out
    vm = nube("vm", "show", "web1", "-o", "json").json()
    assert (vm["state"], vm["hostname"], vm["mem"]) == ("running", "web1.lab", 64)
    assert "state:" in nube("vm", "show", "web1").out
    running = nube("vm", "list", "-q", "state = running", "-o", "json").json()
    assert [v["id"] for v in running] == ["web1"]
    assert nube("-o", "json", "vm", "list", "-q", "state = stopped").json() == []
    assert nube("vm", "stop", "web1", "--wait").code == 0
    assert nube("-o", "json", "vm", "show", "web1").json()["state"] == "stopped"
    assert nube("vm", "start", "web1", "--wait").code == 0
    assert nube("vm", "stop", "web1", "--force", "--wait").code == 0
    assert nube("vm", "remove", "web1", "--wait").code == 0
    assert nube("vm", "show", "web1").code == 5
    assert key not in nube("vm", "list").out


def test_wait_with_json_output_prints_the_operation_as_json(nube, logged_in, host, image):
    run = nube("-o", "json", "vm", "create", "j1", "--image", image, "--mem", 32, "--wait")
    assert run.code == 0, run.err
    assert run.json()["status"] == "succeeded" and run.json()["kind"] == "vm.create"
    assert run.err.strip()  # the log went to stderr


def test_conflicts_are_exit_6(nube, logged_in, host, image, app):
    gen_vm(app, image, "web1", start=True)
    assert nube("vm", "create", "web1", "--image", image, "--mem", 32).code == 6
    wrong_state = nube("vm", "start", "web1")
    assert wrong_state.code == 6 and "running" in wrong_state.err
    with app.app_context():
        get_db().execute("UPDATE vms SET task = 'stopping' WHERE id = 'web1'")
    busy = nube("vm", "stop", "web1")
    assert busy.code == 6 and "busy" in busy.err
    assert (
        nube("host", "add", "127.0.0.9", "--user", "u", "--name", host["name"], typed="pw").code
        == 6
    )


def test_refused_input_is_exit_3(nube, logged_in, host, image):
    bad_mem = nube("vm", "create", "small", "--image", image, "--mem", 1)
    assert bad_mem.code == 3 and "mem" in bad_mem.err
    assert nube("vm", "list", "-q", "state = = running").code == 3


def test_op_show_prints_an_operation_and_follows_its_log(nube, logged_in, host, image):
    started = nube("-o", "json", "vm", "create", "o1", "--image", image, "--mem", 32)
    assert started.code == 0, started.err
    op_id = started.json()["operation"]["id"]
    followed = nube("op", "show", op_id, "--follow")
    assert followed.code == 0, followed.err
    assert "succeeded" in followed.out and len(followed.out.splitlines()) > 1
    shown = nube("op", "show", op_id)
    assert re.search(r"^status: +succeeded$", shown.out, re.M) and "\nlog:\n" in shown.out
    data = nube("-o", "json", "op", "show", op_id).json()
    assert data["kind"] == "vm.create" and data["log"]
    assert nube("op", "show", 999999).code == 5


def test_text_from_the_controller_reaches_the_terminal_clean(nube, logged_in, app):
    with app.app_context():  # what a host's playbook output or a failure could put in a log
        conn = get_db()
        op_id = gen_operation(conn, "host.add", "host:1", f"h{HOSTILE}")
        ops_repo.append_log(conn, op_id, f"TASK {HOSTILE}", "error")
        assert ops_repo.finish(conn, op_id, "failed", error=f"failed: {HOSTILE}")
    for argv in (("op", "show", op_id), ("op", "show", op_id, "--follow")):
        run = nube(*argv)
        assert "abcdefghij" in run.out + run.err  # the visible text stays
        assert not INVISIBLE.search(run.out), run.out
        assert not INVISIBLE.search(run.err), run.err
    assert "failed: abcdefghij" in run.err and run.code == 1


def test_lists_fetch_every_page_unless_one_is_asked(nube, logged_in, host, image, app):
    for number in range(3):
        gen_vm(app, image, f"p{number}", mem=16)
    assert len(nube("-o", "json", "vm", "list", "--per-page", 2).json()) == 3
    second = nube("-o", "json", "vm", "list", "--per-page", 2, "--page", 2)
    assert [v["id"] for v in second.json()] == ["p2"] and "page 2 of 2" in second.err


def test_an_unreachable_controller_is_exit_7(nube, monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}"
    assert nube("login", closed, "--token-stdin", stdin="nube_x").code == 7
    monkeypatch.setenv("NUBE_URL", closed)
    monkeypatch.setenv("NUBE_TOKEN", "nube_x")
    run = nube("vm", "list")
    assert run.code == 7 and "cannot reach" in run.err and "nube_x" not in run.err


def test_usage_errors_are_exit_2(nube, tmp_path):
    assert nube().code == 2
    assert nube("vm").code == 2
    assert nube("vm", "create", "x", "--mem", 64).code == 2  # no --image
    assert nube("op", "show", "zero").code == 2
    assert nube("--help").code == 0
    unconfigured = nube("vm", "list")
    assert unconfigured.code == 2 and "nube login" in unconfigured.err
    assert nube("login", "ftp://example.org", "--token-stdin", stdin="t").code == 2
    private = tmp_path / "id_rsa"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    run = nube("--url", "http://127.0.0.1:1", "vm", "create", "x", "--image", "i", "--mem", 64,
               "--ssh-key", private)  # fmt: skip
    assert run.code == 2


def test_a_revoked_token_is_exit_4(nube, served, token, app):
    me = nube("-o", "json", "login", served, "--token-stdin", stdin=token).json()
    from app.services import tokens, users

    with app.app_context():
        tokens.revoke(me["token"]["id"], users.get(me["id"]))
    run = nube("vm", "list")
    assert run.code == 4 and "nube login" in run.err and token not in run.err


def test_the_settings_file_can_be_chosen_and_one_open_to_others_is_refused(
    nube, served, token, tmp_path
):
    path = tmp_path / "elsewhere.json"
    assert nube("login", served, "--config", path, "--token-stdin", stdin=token).code == 0
    assert nube("vm", "list").code == 2  # the default file was not written
    assert nube("--config", path, "vm", "list").code == 0
    path.chmod(0o644)
    refused = nube("vm", "list", "--config", path)
    assert refused.code == 2 and "chmod 600" in refused.err
