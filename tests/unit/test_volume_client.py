"""`nube volume ...`, `nube vm resize` and `nube vm remove --volumes` against the app served on
loopback, as in test_client.py: each command's output, its exit code for a refusal, and what it
changed (attach and detach with stopped VMs: the test:/// driver cannot hot-plug)."""

import re

import pytest

from app import limits
from tests.factories import gen_vm
from tests.unit import test_client

# test_client.py's fixtures: the client in-process, the served app, logged in with a token
nube = test_client.nube
served = test_client.served
token = test_client.token
logged_in = test_client.logged_in


@pytest.fixture
def config_overrides():
    """Room on the test driver's host for a VM grown in memory and vCPUs."""
    return {"CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


def volume(nube, name):
    """A volume as `nube -o json volume show` prints it."""
    run = nube("-o", "json", "volume", "show", name)
    assert run.code == 0, run.err
    return run.json()


def test_volume_create_list_show_and_remove(nube, logged_in, app):
    made = nube("volume", "create", "data1", "--size", "2", "--wait")
    assert made.code == 0, made.err
    assert "operation" in made.out and "(volume.create) succeeded" in made.out
    queued = nube("volume", "create", "data2", "--size", "1")
    assert queued.code == 0 and re.search(r"nube op show \d+ --follow", queued.out)
    table = nube("volume", "list").out.splitlines()
    assert table[0].split() == ["NAME", "GiB", "FORMAT", "VM", "TARGET", "STATE", "TASK", "PROJECT"]
    assert [line.split()[:2] for line in table[1:]] == [["data1", "2"], ["data2", "1"]]
    listed = nube("-o", "json", "volume", "list", "-q", "size > 1").json()
    assert [item["name"] for item in listed] == ["data1"]
    assert nube("volume", "list", "-q", "nope = 1").code == 3
    shown = nube("volume", "show", "data1")
    assert shown.code == 0 and re.search(r"^state: +available$", shown.out, re.M)
    assert re.search(r"^serial: +data1$", shown.out, re.M)
    assert nube("volume", "show", "nope").code == 5
    taken = nube("volume", "create", "data1", "--size", "1")
    assert taken.code == 6 and "already exists" in taken.err
    removed = nube("volume", "remove", "data1", "--wait")
    assert removed.code == 0 and "(volume.remove) succeeded" in removed.out
    assert nube("volume", "show", "data1").code == 5
    assert not (app.extensions["nube"].storage.volumes_dir / "data1.qcow2").exists()


def test_volume_create_refuses_bad_input(nube, logged_in, image):
    too_big = nube("volume", "create", "data1", "--size", limits.VOLUME_SIZE.maximum + 1)
    assert too_big.code == 3 and limits.VOLUME_SIZE.too_large in too_big.err
    bad_name = nube("volume", "create", "../evil", "--size", "1")
    assert bad_name.code == 3 and limits.VOLUME_NAME_MESSAGE in bad_name.err
    assert nube("volume", "create", "data1", "--size", "0").code == 2  # argparse: 1 or more
    assert nube("volume", "create", "data1").code == 2  # --size is required
    from_image = nube("-o", "json", "volume", "create", "img1", "--size", "1", "--image", image)
    assert from_image.code == 0, from_image.err
    assert from_image.json()["operation"]["kind"] == "volume.create"
    assert volume(nube, "img1")["image"] == image
    assert nube("-o", "json", "volume", "list").json()[0]["name"] == "img1"


def test_volume_attach_grow_detach_on_a_stopped_vm(nube, logged_in, app, host, image):
    gen_vm(app, image)
    assert nube("volume", "create", "data1", "--size", "1", "--wait").code == 0
    attached = nube("volume", "attach", "data1", "vm1", "--wait")
    assert attached.code == 0 and "(volume.attach) succeeded" in attached.out, attached.err
    assert (volume(nube, "data1")["vm"], volume(nube, "data1")["state"]) == ("vm1", "in-use")
    again = nube("volume", "attach", "data1", "vm1")
    assert again.code == 6 and "detach it first" in again.err
    busy = nube("volume", "remove", "data1")
    assert busy.code == 6 and "detach it first" in busy.err
    shrink = nube("volume", "grow", "data1", "1")
    assert shrink.code == 3 and "can only grow" in shrink.err
    grown = nube("volume", "grow", "data1", "3", "--wait")
    assert grown.code == 0 and "(volume.grow) succeeded" in grown.out, grown.err
    assert volume(nube, "data1")["size"] == 3
    detached = nube("volume", "detach", "data1", "--wait")
    assert detached.code == 0 and "(volume.detach) succeeded" in detached.out, detached.err
    assert volume(nube, "data1")["vm"] is None
    assert nube("volume", "detach", "data1").code == 6
    assert nube("volume", "attach", "data1", "novm").code == 3
    for argv in (["attach", "nope", "vm1"], ["detach", "nope"], ["grow", "nope", "5"]):
        assert nube("volume", *argv).code == 5, argv


def test_vm_resize(nube, logged_in, app, host, image):
    gen_vm(app, image)
    run = nube("vm", "resize", "vm1", "--mem", "128", "--vcpus", "2", "--wait")
    assert run.code == 0 and "(vm.resize) succeeded" in run.out, run.err
    vm = nube("-o", "json", "vm", "show", "vm1").json()
    assert (vm["mem"], vm["vcpus"]) == (128, 2)
    same = nube("vm", "resize", "vm1", "--disk", vm["disk"])
    assert same.code == 3 and "nothing to resize" in same.err
    nothing = nube("vm", "resize", "vm1")
    assert nothing.code == 2 and "nothing to change" in nothing.err
    assert nube("vm", "resize", "vm1", "--mem", "8").code == 3
    assert nube("vm", "resize", "novm", "--mem", "128").code == 5


def test_vm_remove_keeps_its_volumes_unless_asked(nube, logged_in, app, host, image):
    for vm_id, name in (("vm1", "keep1"), ("vm2", "gone1")):
        gen_vm(app, image, vm_id=vm_id)
        assert nube("volume", "create", name, "--size", "1", "--wait").code == 0
        assert nube("volume", "attach", name, vm_id, "--wait").code == 0
    assert nube("vm", "remove", "vm1", "--wait").code == 0
    assert volume(nube, "keep1")["state"] == "available"
    assert nube("vm", "remove", "vm2", "--volumes", "--wait").code == 0
    assert nube("volume", "show", "gone1").code == 5
    assert [item["name"] for item in nube("-o", "json", "volume", "list").json()] == ["keep1"]
