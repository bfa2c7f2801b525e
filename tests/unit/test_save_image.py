"""image.save through the Python API: refusals that change nothing; the work flattens a VM's
overlay into a standalone compressed qcow2 equal to the VM's disk, or converts one of its
internal snapshots; failure and cancel leave nothing in images/ or staging. qemu-img runs for
real; virt-sysprep (a 30 s appliance boot) is recorded here and run for real on the cached
Debian image in test_save_image_identity.py."""

import hashlib
import json
import subprocess

import pytest

from app import core
from app.adapters.commands import CommandFailed, CommandRunner
from app.adapters.image_saver import ImageSaver
from app.db import connect, get_db
from app.errors import Busy, Conflict, InvalidInput, NotFound, OperationFailed
from app.ops.runner import execute
from app.repositories import images as images_repo
from app.repositories import operations as ops_repo
from app.services import image_save, operations
from tests.factories import gen_vm

MIB = 1 << 20


class SysprepRecorder(CommandRunner):
    """The real command runner, but virt-sysprep is recorded (and fails or is canceled where a
    test says) instead of booting its appliance."""

    def __init__(self):
        super().__init__(poll=0.05)
        self.commands = []
        self.before = None  # run before virt-sysprep (e.g. a cancel request)
        self.fail = False

    def run(self, args, *, log, check, env=None, stdin_text=None, pass_fds=()):
        self.commands.append((args, env))
        if args[0] != "virt-sysprep":
            return super().run(
                args, log=log, check=check, env=env, stdin_text=stdin_text, pass_fds=pass_fds
            )
        log("$ " + " ".join(args))
        if self.before:
            self.before()
        check()
        if self.fail:  # what virt-sysprep prints on a disk with no OS it knows
            for line in (
                "virt-sysprep: error: no operating systems were found in the guest image",
                "If reporting bugs, run virt-sysprep with debugging enabled and include the",
                "  virt-sysprep -v -x [...]",
            ):
                log(line)
            raise CommandFailed("virt-sysprep failed (exit status 1):   virt-sysprep -v -x [...]")
        return None

    def missing(self, tools):
        return []


@pytest.fixture
def recorder(app):
    """The app's image saver with virt-sysprep recorded."""
    runner = SysprepRecorder()
    app.extensions["nube"].image_saver = ImageSaver(runner=runner)
    return runner


def qemu_img(*args):
    """Run qemu-img; its stdout."""
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=True).stdout


def qemu_io(path, command):
    """Write with qemu-io into a qcow2."""
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", command, str(path)], check=True, capture_output=True
    )


def storage(app):
    return app.extensions["nube"].storage


def leftovers(app):
    """Every file in images/ and the staging folder."""
    root = storage(app).root
    found = sorted(p.name for p in (root / "images").iterdir())
    if (root / ".staging").exists():
        found += sorted(f".staging/{p.name}" for p in (root / ".staging").iterdir())
    return found


def state(app):
    """What a refused request must leave as it was: VM rows, operations, files."""
    conn = get_db()
    return (
        [tuple(r) for r in conn.execute("SELECT id, state, task FROM vms ORDER BY id")],
        conn.execute("SELECT COUNT(*) FROM operations").fetchone()[0],
        [tuple(r) for r in conn.execute("SELECT name FROM images")],
        leftovers(app),
    )


@pytest.fixture
def vm(ctx, host, recorder):
    """A stopped VM vm1 on a 64 MiB raw base, with data of its own written in its overlay."""
    qemu_img("create", "-q", "-f", "raw", str(storage(ctx).images_dir / "base.raw"), "64M")
    with open(storage(ctx).images_dir / "base.raw", "r+b") as handle:
        handle.write(b"base" * 4096)
    gen_vm(ctx, "base.raw", "vm1")
    qemu_io(storage(ctx).disk_path("vm1"), "write -P 0x11 1M 64k")
    return "vm1"


def test_a_save_flattens_the_disk_into_a_standalone_compressed_qcow2(ctx, vm, recorder):
    info = core.saveImage(vm, "golden.qcow2")
    saved = storage(ctx).images_dir / "golden.qcow2"
    assert info["name"] == "golden.qcow2" and info["format"] == "qcow2"
    assert info["virtual_size"] == 1024 * MIB  # the VM's disk: its image's size in whole GiB
    header = json.loads(qemu_img("info", "--output=json", str(saved)))
    assert "backing-filename" not in header and header["format"] == "qcow2"
    assert qemu_img("compare", str(storage(ctx).disk_path(vm)), str(saved)).startswith(
        "Images are identical"
    )
    # compressed: qemu-img check counts its compressed clusters
    check = json.loads(qemu_img("check", "--output=json", str(saved)))
    assert check["compressed-clusters"] > 0
    assert oct(saved.stat().st_mode & 0o777) == "0o644"
    assert leftovers(ctx) == ["base.raw", "golden.qcow2"]  # staging emptied
    # virt-sysprep ran on the staged copy, never on the VM's disk
    [(sysprep, env)] = [c for c in recorder.commands if c[0][0] == "virt-sysprep"]
    assert sysprep[sysprep.index("-a") + 1].endswith("/image.qcow2")
    assert "/.staging/" in sysprep[sysprep.index("-a") + 1]
    assert sysprep[-4:-2] == ["--delete", "/var/lib/cloud/*"]
    assert sysprep[-2:] == ["--truncate", "/etc/machine-id"]
    assert env == {"LIBGUESTFS_BACKEND": "direct"}  # VIRT_TYPE auto: libguestfs decides
    [image] = [i for i in core_images(ctx) if i["name"] == "golden.qcow2"]
    assert image["description"] == "saved from a VM made from base.raw"
    assert core.listVms("id = vm1")[0]["task"] is None
    op = ops_repo.page(get_db(), "", 10, 0)[0][0]
    assert (op["kind"], op["target_type"], op["target_id"], op["status"]) == (
        "image.save",
        "image",
        "golden.qcow2",
        "succeeded",
    )
    # the VM's page lists it too
    assert [o["id"] for o in operations.for_target("vm", "vm1")][0] == op["id"]
    assert (op["progress_done"], op["progress_total"]) == (3, 3)


def core_images(app):
    """The images page's rows."""
    from app.services import images

    return images.search()


def test_a_snapshot_is_saved_as_it_was_taken(ctx, vm, recorder, tmp_path):
    disk = storage(ctx).disk_path(vm)
    core.snapshotVm(vm, "before-upgrade")  # inside the disk, as nube-before-upgrade
    qemu_io(disk, "write -P 0x22 1M 64k")  # written after the snapshot
    core.saveImage(vm, "kept.qcow2", snapshot="before-upgrade")
    saved = storage(ctx).images_dir / "kept.qcow2"
    reference = tmp_path / "snapshot.raw"
    qemu_img(
        "convert", "-O", "raw", "-l", "snapshot.name=nube-before-upgrade", str(disk), str(reference)
    )
    assert qemu_img("compare", str(reference), str(saved)).startswith("Images are identical")
    now = subprocess.run(["qemu-img", "compare", str(disk), str(saved)], capture_output=True)
    assert now.returncode == 1  # the data written since the snapshot is not in the image
    [convert] = [c[0] for c in recorder.commands if "convert" in c[0]]
    assert "disk-copy.qcow2" in convert[-2]  # the copy out of the hosts' reach, not the disk
    assert convert[convert.index("-l") + 1] == "snapshot.name=nube-before-upgrade"


def test_the_chain_is_the_one_nube_names_not_the_header(ctx, vm):
    disk = storage(ctx).disk_path(vm)
    # a host rewrote the header to name another file: refused before any copy
    qemu_img("rebase", "-u", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", str(disk))
    before = state(ctx)
    with pytest.raises(Conflict, match="names backing file '/etc/hostname'"):
        core.saveImage(vm, "leak.qcow2")
    assert state(ctx) == before


def test_a_disk_swapped_for_a_link_is_never_read(ctx, vm, recorder):
    # a host replaced vm1's disk with a link to another VM's (same image: the header passes)
    gen_vm(ctx, "base.raw", "vm2")
    qemu_io(storage(ctx).disk_path("vm2"), "write -P 0x33 2M 64k")
    disk = storage(ctx).disk_path(vm)
    disk.unlink()
    disk.symlink_to("vm2.qcow2")
    with pytest.raises(OperationFailed, match="a link is never followed"):
        core.saveImage(vm, "leak.qcow2")
    assert leftovers(ctx) == ["base.raw"]


@pytest.mark.parametrize(
    "name, snapshot, error, message",
    [
        ("../x.qcow2", None, InvalidInput, "invalid image name"),
        ("golden", None, InvalidInput, "must end in .qcow2, .raw, .img"),
        ("golden.raw", None, InvalidInput, "a saved image is a qcow2 file"),
        ("build", None, InvalidInput, "invalid image name|is reserved|must end in"),
        (None, None, InvalidInput, "invalid image name"),
        ("golden.qcow2", "bad name!", InvalidInput, "snapshot name must be"),
        ("golden.qcow2", "missing", NotFound, "VM vm1 has no snapshot missing"),
        ("base.raw", None, InvalidInput, "a saved image is a qcow2 file"),
    ],
)
def test_bad_requests_change_nothing(ctx, vm, name, snapshot, error, message):
    before = state(ctx)
    with pytest.raises(error, match=message):
        core.saveImage(vm, name, snapshot=snapshot)
    assert state(ctx) == before


def test_a_taken_name_a_running_vm_and_a_busy_vm_are_refused(ctx, vm, host):
    (storage(ctx).images_dir / "taken.qcow2").write_bytes(b"mine")
    before = state(ctx)
    with pytest.raises(Conflict, match="image taken.qcow2 already exists"):
        core.saveImage(vm, "taken.qcow2")
    assert state(ctx) == before
    core.startVm(vm)
    before = state(ctx)
    with pytest.raises(Conflict, match="VM vm1 is running: stop it first"):
        core.saveImage(vm, "golden.qcow2")
    assert state(ctx) == before
    core.stopVm(vm, force=True)
    op_id = image_save.request_save(vm, "golden.qcow2", None, "someone")  # pending, not run
    with pytest.raises(Busy, match="saving"):
        core.saveImage(vm, "other.qcow2")
    with pytest.raises(Busy, match="saving"):
        core.startVm(vm)
    gen_vm(ctx, "base.raw", "vm2")
    with pytest.raises(Busy, match=f"operation {op_id}"):  # one operation per image name
        core.saveImage("vm2", "golden.qcow2")
    assert (storage(ctx).images_dir / "taken.qcow2").read_bytes() == b"mine"
    assert ops_repo.get(get_db(), op_id)["status"] == "pending"
    with pytest.raises(NotFound, match="VM nowhere not found"):
        core.saveImage("nowhere", "golden.qcow2")


def test_a_save_the_repository_has_no_room_for_is_refused(ctx, vm, monkeypatch):
    monkeypatch.setattr(storage(ctx), "free_bytes", lambda: 4096)
    before = state(ctx)
    with pytest.raises(Conflict, match="no room to save VM vm1: .* GiB free"):
        core.saveImage(vm, "golden.qcow2")
    assert state(ctx) == before


def test_a_failed_identity_step_leaves_nothing(ctx, vm, recorder):
    recorder.fail = True
    message = "virt-sysprep could not remove the guest's identity: no operating systems were found"
    with pytest.raises(OperationFailed, match=message):
        core.saveImage(vm, "golden.qcow2")
    assert leftovers(ctx) == ["base.raw"]
    assert [tuple(r) for r in get_db().execute("SELECT name FROM images")] == []
    assert core.listVms("id = vm1")[0]["task"] is None


def test_a_canceled_save_leaves_nothing(app, ctx, vm, recorder):
    op_id = image_save.request_save(vm, "golden.qcow2", None, "someone")

    def cancel():
        conn = connect(app.config["DATABASE"])
        try:
            ops_repo.request_cancel(conn, op_id)
        finally:
            conn.close()

    recorder.before = cancel
    execute(op_id, app)
    op = ops_repo.get(get_db(), op_id)
    assert op["status"] == "canceled"
    assert leftovers(ctx) == ["base.raw"]
    log = [line["message"] for line in ops_repo.log_lines(get_db(), op_id)]
    assert any("removed the staging folder" in line for line in log)


def test_a_tampered_stored_input_is_refused_at_use(app, ctx, vm, recorder):
    op_id = image_save.request_save(vm, "golden.qcow2", None, "someone")
    conn = connect(app.config["DATABASE"])
    try:
        conn.execute(
            "UPDATE operations SET target_id = ?, input = ? WHERE id = ?",
            ("../../etc/x.qcow2", json.dumps({"vm": "vm1", "snapshot": "-l x"}), op_id),
        )
    finally:
        conn.close()
    execute(op_id, app)
    op = ops_repo.get(get_db(), op_id)
    assert op["status"] == "failed" and "invalid image name" in op["error"]
    assert recorder.commands == [] and leftovers(ctx) == ["base.raw"]


def test_virt_type_qemu_runs_the_appliance_under_tcg(tmp_path):
    runner = SysprepRecorder()
    ImageSaver(runner=runner, tcg=True).reset_identity(
        tmp_path / "x.qcow2", log=lambda line: None, check=lambda: None
    )
    [(_args, env)] = runner.commands
    assert env == {"LIBGUESTFS_BACKEND": "direct", "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}


def test_a_saved_image_records_where_it_came_from_and_its_checksum(ctx, vm, recorder):
    core.saveImage(vm, "golden.qcow2")
    record = images_repo.all_records(get_db())["golden.qcow2"]
    saved = ctx.extensions["nube"].storage.image_path("golden.qcow2")
    assert record["source"] == "vm" and record["uploaded_by"] == "api"
    assert record["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert record["description"] == "saved from a VM made from base.raw"  # no VM id: public


@pytest.mark.parametrize(
    "options, size, message",
    [
        (["-o", "data_file={secret}"], "64M", "names an external data file"),
        ([], "1P", "more than its 1073741824 bytes"),
    ],
)
def test_a_header_a_host_rewrote_before_the_copy_is_refused(tmp_path, options, size, message):
    # what a host could write into the disk between the request's check and the save's read
    secret = tmp_path / "secret"
    secret.write_bytes(b"controller secret" * 64)
    disk = tmp_path / "vm1.qcow2"
    opts = [o.format(secret=secret) for o in options]
    qemu_img("create", "-q", "-f", "qcow2", *opts, str(disk), size)
    out = tmp_path / "out" / "image.qcow2"
    out.parent.mkdir()
    with pytest.raises(OperationFailed, match=message):
        ImageSaver().flatten(disk, [], out, log=print, check=lambda: None, max_size=1 << 30)
    assert sorted(p.name for p in out.parent.iterdir()) == []  # no copy, no image
