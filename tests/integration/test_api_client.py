"""The `nube` console script end to end: a real Nube (gunicorn and the queue's consumer, as
`make run` starts them) on a temp instance, a lab host added, a VM created, started, listed,
stopped and removed, and the host removed, each through `.venv/bin/nube` as a subprocess with
`--wait` (the real operations, with real ansible-runner, libvirt and QEMU)."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import make_image
from tests.processes import ROOT, Consumer, Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
IMAGE = "base.qcow2"
ADMIN = ("admin", "admin-cli-password")
STEP_TIMEOUT = 900  # seconds: adding a host runs host_add.yaml for real
MEMBER = ("ana", "member-cli-password")
# A user's token (argv[1]), through the tokens service in the controller's own settings.
CREATE_TOKEN = """
import sys
from app import create_app
from app.db import get_db
from app.repositories import users as users_repo
from app.services import tokens, users

app = create_app()
with app.app_context():
    user = users.get(users_repo.by_username(get_db(), sys.argv[1])["id"])
    print(tokens.create(user, "integration", None, "test")[1])
"""
REMOVE_HOSTS = "from app import core\nfor h in core.listHosts(): core.removeHost(h['id'])"


def run(env, *args, stdin=None):
    """A command in the controller's environment; its stdout, or a failure with its stderr."""
    done = subprocess.run(
        args, cwd=ROOT, env=env, input=stdin, text=True, capture_output=True, timeout=300
    )
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def controller(lab_hosts):
    """Nube on a temp instance and repository (export none, a blank qcow2 image), with an
    admin and an API token of theirs; stopped by pid, its hosts removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix="nube-cli-"))
    top.chmod(0o755)  # QEMU must traverse every folder above the disks
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "NUBE_INSTANCE_PATH": str(top / "instance"),
        "NUBE_DATABASE": str(top / "nube.sqlite"),
        "NUBE_REPOSITORY": str(top / "export" / "iaas"),
        "NUBE_QUEUE": "sqlite",
        "NUBE_EXPORT": "none",
        "NUBE_STOP_TIMEOUT": "3",  # a blank disk has no OS to answer ACPI
    }
    env.pop("NUBE_URL", None)
    env.pop("NUBE_TOKEN", None)
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    run(env, *flask, "nube", "init")
    run(env, *flask, "user", "create", ADMIN[0], "--role", "admin", stdin=ADMIN[1] + "\n")
    run(env, *flask, "user", "create", MEMBER[0], "--role", "member", stdin=MEMBER[1] + "\n")
    token, member_token = (
        run(env, sys.executable, "-c", CREATE_TOKEN, name).strip().splitlines()[-1]
        for name in (ADMIN[0], MEMBER[0])
    )
    image = make_image(top / "export" / "iaas" / "images" / IMAGE, size="64M", fmt="qcow2")
    image.chmod(0o644)
    logs = top / "logs"
    logs.mkdir()
    consumer = Consumer(env, workers=2, log=logs / "consumer.log")
    server = Server(env, workers=1, threads=4, log=open(logs / "gunicorn.log", "ab"))  # noqa: SIM115
    try:
        yield {
            "url": server.url,
            "token": token,
            "member_token": member_token,
            "env": env,
            "top": top,
            "hosts": lab_hosts,
        }
    finally:
        server.stop()
        consumer.stop()
        subprocess.run([sys.executable, "-c", REMOVE_HOSTS], cwd=ROOT, env=env, check=False)
        subprocess.run(["rm", "-rf", str(top)], check=False)


@pytest.fixture
def nube(controller, tmp_path):
    """nube(*argv, stdin=None, code=0): the installed console script as a subprocess, with its
    own settings folder; checks the exit code and returns (stdout, stderr)."""
    return client_as(controller, tmp_path / "xdg")


def client_as(controller, settings):
    """The console script with its settings under settings (one per user logged in)."""
    script = BIN / "nube"
    assert script.exists(), f"{script} is missing: `make venv` installs it (pip install -e .)"
    env = {**controller["env"], "XDG_CONFIG_HOME": str(settings)}

    def call(*argv, stdin=None, code=0):
        done = subprocess.run(
            [str(script), *argv],
            env=env,
            input=stdin,
            text=True,
            capture_output=True,
            timeout=STEP_TIMEOUT,
        )
        assert done.returncode == code, (
            f"nube {' '.join(argv)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout, done.stderr

    return call


def test_a_host_and_a_vm_through_the_nube_client(controller, nube, tmp_path):
    lab = controller["hosts"][0]
    out, _ = nube("login", controller["url"], "--token-stdin", stdin=controller["token"] + "\n")
    assert "as admin (admin)" in out
    settings = tmp_path / "xdg" / "nube" / "config.json"
    assert settings.stat().st_mode & 0o777 == 0o600

    out, err = nube(
        "host", "add", lab["address"], "--user", lab["user"], "--name", "lab1",
        "--share", "bind", "--network", "none", "--password-stdin", "--wait",
        stdin=lab["password"] + "\n",
    )  # fmt: skip
    assert "host_add.yaml" in out and "operation" in out and "succeeded" in out
    assert lab["password"] not in out + err
    hosts = json.loads(nube("-o", "json", "host", "list", "-q", "name = lab1")[0])
    assert [(h["name"], h["state"]) for h in hosts] == [("lab1", "ready")]

    out, _ = nube(
        "vm", "create", "cli1", "--image", IMAGE, "--mem", "64", "--host", "lab1",
        "--start", "--wait",
    )  # fmt: skip
    assert "succeeded" in out
    running = json.loads(nube("vm", "list", "-q", "state = running", "-o", "json")[0])
    assert [(vm["id"], vm["host_name"]) for vm in running] == [("cli1", "lab1")]

    member_sees_only_their_project(controller, nube, tmp_path)

    nube("vm", "stop", "cli1", "--wait")
    assert json.loads(nube("-o", "json", "vm", "show", "cli1")[0])["state"] == "stopped"
    nube("vm", "remove", "cli1", "--wait")
    _, err = nube("vm", "show", "cli1", code=5)
    assert "not found" in err
    assert not (controller["top"] / "export" / "iaas" / "vms" / "cli1.qcow2").exists()

    nube("host", "remove", "lab1", "--wait")
    assert json.loads(nube("-o", "json", "host", "list")[0]) == []


def member_sees_only_their_project(controller, nube, tmp_path):
    """A member of lab (quota: 1 VM) through their own client: creates a VM on the real host,
    is refused a second one with the quota named, and finds cli1 (project default) nowhere."""
    nube("project", "create", "lab", "--vms", "1", "--description", "the member's")
    nube("project", "add-member", "lab", MEMBER[0])
    member = client_as(controller, tmp_path / "member-xdg")
    out, _ = member("login", controller["url"], "--token-stdin",
                    stdin=controller["member_token"] + "\n")  # fmt: skip
    assert "as ana (member)" in out
    out, _ = member("vm", "create", "mine1", "--image", IMAGE, "--mem", "64", "--wait")
    assert "succeeded" in out
    _, err = member("vm", "create", "mine2", "--image", IMAGE, "--mem", "64", code=6)
    assert "quota is reached: VMs: 1 of 1 used" in err, err
    listed = json.loads(member("-o", "json", "vm", "list")[0])
    assert [(vm["id"], vm["project"]) for vm in listed] == [("mine1", "lab")]
    assert json.loads(member("-o", "json", "vm", "list", "-q", "id = cli1")[0]) == []
    for argv in (("vm", "show", "cli1"), ("vm", "stop", "cli1"), ("vm", "boot-log", "cli1")):
        _, err = member(*argv, code=5)
        assert "not found" in err
    _, err = member("host", "list", code=4)
    assert "members cannot see or manage hosts" in err
    projects = json.loads(member("-o", "json", "project", "list")[0])
    assert [p["name"] for p in projects] == ["lab"]
    ops = json.loads(member("-o", "json", "op", "list")[0])
    assert ops and {op["target_name"] for op in ops} == {"mine1"}
    member("vm", "remove", "mine1", "--wait")
    nube("project", "remove", "lab")
