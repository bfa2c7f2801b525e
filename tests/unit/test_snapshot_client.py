"""`nube vm snapshot`, `snapshots`, `snapshot-show`, `revert` and `snapshot-remove` against the
app served on loopback, as in test_client.py, on a stopped VM of the test driver: each
command's output, its exit code for a refusal, what it changed, and the confirmation a revert
and a deletion ask for (--yes, or y typed at a terminal; nothing sent otherwise)."""

import re

import pytest

from app import limits
from tests.conftest import row
from tests.factories import gen_vm
from tests.unit import test_client
from tests.unit.test_snapshots import holds, write

# test_client.py's fixtures: the client in-process, the served app, logged in with a token
nube = test_client.nube
served = test_client.served
token = test_client.token
logged_in = test_client.logged_in


@pytest.fixture
def config_overrides():
    """Room on the test driver's one small host for every VM these tests make."""
    return {"CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


@pytest.fixture
def vm1(app, host, image):
    """VM vm1, stopped, on the test driver's host: its disk's path."""
    gen_vm(app, image)
    return app.extensions["nube"].storage.disk_path("vm1")


def snapshots(nube, vm="vm1"):
    """The snapshots as `nube -o json vm snapshots` prints them."""
    run = nube("-o", "json", "vm", "snapshots", vm)
    assert run.code == 0, run.err
    return run.json()


def operations(app):
    """How many operations exist."""
    return row(app, "SELECT COUNT(*) AS n FROM operations")["n"]


def test_snapshot_list_show_revert_and_remove(nube, logged_in, vm1):
    write(vm1, "0xaa")
    taken = nube("vm", "snapshot", "vm1", "before", "--wait")
    assert taken.code == 0 and "(vm.snapshot) succeeded" in taken.out, taken.err
    queued = nube("vm", "snapshot", "vm1", "later")
    assert queued.code == 0 and re.search(r"nube op show \d+ --follow", queued.out)
    table = nube("vm", "snapshots", "vm1").out.splitlines()
    assert table[0].split() == ["NAME", "STATE", "FROZEN", "SIZE", "VOLUMES", "CREATED"]
    assert [line.split()[:2] for line in table[1:]] == [["before", "ready"], ["later", "ready"]]
    assert "stopped VM" in table[1] and re.search(r"\d+\.\d (KiB|MiB)", table[1])
    listed = snapshots(nube)
    assert listed[0]["frozen"] is None and listed[0]["size"] > 0  # JSON keeps the API's values
    shown = nube("vm", "snapshot-show", "vm1", "before")
    assert shown.code == 0 and re.search(r"^state: +ready$", shown.out, re.M)
    assert nube("vm", "snapshot-show", "vm1", "nope").code == 5

    write(vm1, "0xbb")
    reverted = nube("vm", "revert", "vm1", "before", "--yes", "--wait")
    assert reverted.code == 0 and "(vm.revert) succeeded" in reverted.out, reverted.err
    assert holds(vm1, "0xaa")
    removed = nube("vm", "snapshot-remove", "vm1", "before", "-y", "--wait")
    assert removed.code == 0 and "(snapshot.remove) succeeded" in removed.out, removed.err
    assert [s["name"] for s in snapshots(nube)] == ["later"]


def test_revert_and_remove_ask_first(nube, logged_in, vm1, app):
    assert nube("vm", "snapshot", "vm1", "s1", "--wait").code == 0
    before = operations(app)
    # no terminal to ask at: refused without --yes, nothing sent
    piped = nube("vm", "revert", "vm1", "s1")
    assert piped.code == 2 and "--yes" in piped.err and "Everything written" in piped.err
    assert nube("vm", "snapshot-remove", "vm1", "s1").code == 2
    # at a terminal: anything but y is a no
    declined = nube("vm", "revert", "vm1", "s1", stdin="n\n", typed="")
    assert declined.code == 2 and "not confirmed" in declined.err
    assert "[y/N]" in declined.err
    assert nube("vm", "snapshot-remove", "vm1", "s1", stdin="\n", typed="").code == 2
    assert operations(app) == before and snapshots(nube)[0]["state"] == "ready"
    agreed = nube("vm", "snapshot-remove", "vm1", "s1", "--wait", stdin="y\n", typed="")
    assert agreed.code == 0 and "(snapshot.remove) succeeded" in agreed.out, agreed.err
    assert snapshots(nube) == []


def test_refusals_have_their_exit_codes(nube, logged_in, vm1, app):
    assert nube("vm", "snapshot", "vm1", "s1", "--wait").code == 0
    taken = nube("vm", "snapshot", "vm1", "s1")
    assert taken.code == 6 and "already has a snapshot s1" in taken.err
    bad = nube("vm", "snapshot", "vm1", "bad name")
    assert bad.code == 3 and limits.SNAPSHOT_NAME_MESSAGE in bad.err
    assert nube("vm", "snapshots", "novm").code == 5
    assert nube("vm", "revert", "vm1", "nope", "--yes").code == 5
    assert nube("vm", "start", "vm1", "--wait").code == 0
    running = nube("vm", "revert", "vm1", "s1", "--yes")
    assert running.code == 6 and "running" in running.err
    assert nube("vm", "snapshot").code == 2  # VM and NAME are required
