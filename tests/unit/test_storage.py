"""Storage against a tmp_path repository and the real qemu-img."""

import io
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from app import core
from app.adapters.storage import Storage, check_image_name, check_vm_id
from app.errors import InvalidInput, NotFound, OperationFailed
from tests.factories import gen_prepared_host as _host
from tests.factories import make_image

MiB = 1 << 20
BAD_NAMES = ["../x", "/etc/passwd", "a/b", "a\x00b", "a b", ".hidden", "..", "", "ok\n", None, 3]


def qemu_img(*args):
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=True).stdout


def info(path):
    return json.loads(qemu_img("info", "--output=json", "-U", str(path)))


def make_raw(path, size=64 * MiB, data=4 * MiB):
    """A sparse raw image with `data` bytes of random content at its start."""
    with open(path, "wb") as f:
        f.write(os.urandom(data))
        f.truncate(size)


@pytest.fixture
def store(tmp_path):
    s = Storage(tmp_path / "repo")
    s.ensure_layout()
    return s


@pytest.fixture
def base(store):
    make_raw(store.images_dir / "base.raw")
    return "base.raw"


@pytest.fixture
def count_runs(monkeypatch):
    calls = []
    real_run = subprocess.run

    def counting_run(*args, **kwargs):
        calls.append(args[0])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    return calls


# --- names and paths ---------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_and_ids_are_refused(store, bad):
    for check in (check_image_name, check_vm_id, store.image_path, store.disk_path):
        with pytest.raises(InvalidInput):
            check(bad)


def test_partial_suffix_is_not_an_image_name():
    with pytest.raises(InvalidInput):
        check_image_name("disk.qcow2.part")
    assert check_image_name("debian-12+1.qcow2") == "debian-12+1.qcow2"
    assert check_vm_id("web-1.prod") == "web-1.prod"


def test_paths_stay_inside_the_repository(store):
    assert store.image_path("a.raw") == (store.images_dir / "a.raw").resolve()
    assert store.disk_path("web1") == (store.vms_dir / "web1.qcow2").resolve()


def test_symlink_escaping_images_is_refused(store, tmp_path):
    outside = tmp_path / "secret.raw"
    make_raw(outside, size=MiB, data=0)
    (store.images_dir / "evil.raw").symlink_to(outside)
    (store.vms_dir / "evil.qcow2").symlink_to(outside)
    with pytest.raises(InvalidInput):
        store.image_path("evil.raw")
    with pytest.raises(InvalidInput):
        store.disk_path("evil")
    assert store.list_images() == []


def test_ensure_layout_is_idempotent(tmp_path):
    s = Storage(tmp_path / "r")
    s.ensure_layout()
    s.ensure_layout()
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["images", "vms", "volumes"]
    assert (s.vms_dir.stat().st_mode & 0o777) == 0o755


def test_unknown_disk_mode_is_refused(tmp_path):
    with pytest.raises(InvalidInput):
        Storage(tmp_path, disk_mode="thin")


# --- VM disks ----------------------------------------------------------------


def test_overlay_disk_is_thin_and_relative(store, base):
    logs = []
    path = store.create_disk("web1", base, log=logs.append)
    assert path == store.disk_path("web1")
    disk = info(path)
    assert disk["format"] == "qcow2"
    assert disk["backing-filename"] == "../images/base.raw"
    assert disk["backing-filename-format"] == "raw"
    assert disk["virtual-size"] == 64 * MiB
    assert disk["actual-size"] < 1 * MiB < info(store.images_dir / base)["actual-size"]
    assert (path.stat().st_mode & 0o777) == 0o644
    assert any("qemu-img create" in line for line in logs)
    # the guest sees exactly the base image's content through the overlay
    qemu_img("compare", str(path), str(store.images_dir / base))
    assert store.disk_path("web1").is_file()
    assert sorted(os.listdir(store.vms_dir)) == ["web1.qcow2"]


def test_copy_disk_is_standalone(tmp_path, base):
    store = Storage(tmp_path / "repo", disk_mode="copy")
    path = store.create_disk("db1", base)
    disk = info(path)
    assert disk["format"] == "qcow2"
    assert "backing-filename" not in disk
    qemu_img("compare", str(path), str(store.images_dir / base))
    store.delete_image(base)
    qemu_img("check", str(path))


def test_creating_twice_is_refused(store, base):
    store.create_disk("web1", base)
    before = store.disk_path("web1").stat()
    with pytest.raises(InvalidInput):
        store.create_disk("web1", base)
    assert store.disk_path("web1").stat().st_ino == before.st_ino
    assert sorted(os.listdir(store.vms_dir)) == ["web1.qcow2"]


def test_missing_image_is_not_found(store):
    with pytest.raises(NotFound):
        store.create_disk("web1", "nope.qcow2")
    assert not store.disk_path("web1").exists()


def test_failure_leaves_no_partial_file(store, base, tmp_path):
    # a qemu-img that really writes the target, then fails
    fake = tmp_path / "fake-qemu-img"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = info ]; then exec qemu-img "$@"; fi\n'
        'qemu-img "$@" >/dev/null 2>&1\necho "boom: disk full" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    for mode in ("overlay", "copy"):
        broken = Storage(store.root, disk_mode=mode, qemu_img=str(fake))
        with pytest.raises(OperationFailed, match="boom: disk full"):
            broken.create_disk("web1", base)
        assert os.listdir(store.vms_dir) == []


# --- images ------------------------------------------------------------------


def test_list_images_skips_hidden_partial_and_odd_files(store, base):
    qemu_img("create", "-f", "qcow2", str(store.images_dir / "small.qcow2"), "16M")
    (store.images_dir / ".hidden.raw").write_bytes(b"x" * 512)
    (store.images_dir / ".upload-abc.part").write_bytes(b"x" * 512)
    (store.images_dir / "half.qcow2.part").write_bytes(b"x" * 512)
    (store.images_dir / "with space.raw").write_bytes(b"x" * 512)
    (store.images_dir / "subdir").mkdir()
    images = store.list_images()
    assert [i.name for i in images] == ["base.raw", "small.qcow2"]
    raw, qcow = images
    assert (raw.format, raw.virtual_size) == ("raw", 64 * MiB)
    assert 4 * MiB <= raw.actual_size < 64 * MiB
    assert (qcow.format, qcow.virtual_size) == ("qcow2", 16 * MiB)
    assert qcow.actual_size < MiB
    assert qcow.mtime == pytest.approx((store.images_dir / "small.qcow2").stat().st_mtime)


def test_list_images_uses_the_cache(store, base, count_runs):
    store.list_images()
    assert len(count_runs) == 1
    store.list_images()
    store.image_info(base)
    assert len(count_runs) == 1
    # a changed file is looked at again
    later = time.time() + 10
    os.utime(store.images_dir / base, (later, later))
    store.list_images()
    assert len(count_runs) == 2


def test_image_info_errors(store):
    with pytest.raises(NotFound):
        store.image_info("absent.raw")
    with pytest.raises(InvalidInput):
        store.image_info("../absent.raw")


def test_delete_image(store, base):
    store.delete_image(base)
    assert store.list_images() == []
    with pytest.raises(NotFound):
        store.delete_image(base)


def test_delete_image_removes_a_symlink_not_its_target(store, base):
    (store.images_dir / "alias.raw").symlink_to(base)
    store.delete_image("alias.raw")
    assert [i.name for i in store.list_images()] == [base]


# --- uploads -----------------------------------------------------------------


@pytest.fixture
def small_qcow2(tmp_path):
    path = tmp_path / "upload.qcow2"
    qemu_img("create", "-f", "qcow2", str(path), "32M")
    return path


def test_save_upload_stores_a_qcow2(store, small_qcow2):
    with open(small_qcow2, "rb") as f:
        image = store.save_upload("small.qcow2", f, max_bytes=10 * MiB, chunk_size=4096)
    assert (image.name, image.format, image.virtual_size) == ("small.qcow2", "qcow2", 32 * MiB)
    stored = store.images_dir / "small.qcow2"
    assert stored.read_bytes() == small_qcow2.read_bytes()
    assert (stored.stat().st_mode & 0o777) == 0o644
    assert os.listdir(store.images_dir) == ["small.qcow2"]


def test_save_upload_refuses_over_the_limit(store):
    stream = io.BytesIO(b"x" * (3 * MiB))
    with pytest.raises(InvalidInput, match="larger than 1 MB"):
        store.save_upload("big.raw", stream, max_bytes=MiB, chunk_size=64 * 1024)
    assert os.listdir(store.images_dir) == []


def test_save_upload_refuses_a_duplicate(store, small_qcow2):
    with open(small_qcow2, "rb") as f:
        store.save_upload("small.qcow2", f, max_bytes=10 * MiB)
    original = (store.images_dir / "small.qcow2").read_bytes()
    with pytest.raises(InvalidInput, match="already exists"):
        store.save_upload("small.qcow2", io.BytesIO(b"y" * 4096), max_bytes=10 * MiB)
    assert (store.images_dir / "small.qcow2").read_bytes() == original
    assert os.listdir(store.images_dir) == ["small.qcow2"]


def test_commit_refuses_a_name_taken_during_the_upload(store, small_qcow2):
    tmp, f = store.upload_target()
    with f:
        f.write(small_qcow2.read_bytes())
    (store.images_dir / "race.qcow2").write_bytes(b"first")
    with pytest.raises(InvalidInput, match="already exists"):
        store.commit_upload("race.qcow2", tmp)
    assert (store.images_dir / "race.qcow2").read_bytes() == b"first"
    assert not tmp.exists()


def test_commit_only_takes_upload_temp_files(store, base):
    with pytest.raises(InvalidInput):
        store.commit_upload("stolen.raw", store.images_dir / base)
    assert (store.images_dir / base).exists()


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda p: qemu_img("create", "-f", "qcow2", "-F", "raw", "-b", "/etc/passwd", p, "1M"),
            "backing file",
        ),
        (
            lambda p: qemu_img("create", "-f", "qcow2", "-o", f"data_file={p}.data", p, "1M"),
            "data file",
        ),
        (lambda p: qemu_img("create", "-f", "vmdk", p, "1M"), "unsupported image format"),
        (lambda p: open(p, "wb").close(), "empty"),
    ],
)
def test_save_upload_refuses_unsafe_images(store, tmp_path, make, match):
    src = tmp_path / "src.img"
    make(str(src))
    with open(src, "rb") as f, pytest.raises(InvalidInput, match=match):
        store.save_upload("evil.img", f, max_bytes=10 * MiB)
    assert os.listdir(store.images_dir) == []


def test_broken_qemu_img_is_an_operation_failure_not_a_bad_image(store, base):
    broken = Storage(store.root, qemu_img="/nonexistent/qemu-img")
    with pytest.raises(OperationFailed, match="cannot run"):
        broken.list_images()
    with pytest.raises(OperationFailed, match="cannot run"):
        broken.create_disk("web1", base)
    assert os.listdir(store.vms_dir) == []


# Issue 9, finding 3: base images are checked at use.


@pytest.mark.parametrize("disk_mode", ["overlay", "copy"])
def test_an_image_with_a_backing_file_never_backs_a_vm(app, tmp_path, disk_mode):
    storage = app.extensions["nube"].storage
    storage.disk_mode = disk_mode
    secret = make_image(tmp_path / "controller-secret.raw", size="1M")
    evil = storage.images_dir / "evil.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret), str(evil)],
        check=True,
    )
    _host(app)
    with app.app_context(), pytest.raises(InvalidInput, match="backing file"):
        core.addVm({"id": "vm1", "image": "evil.qcow2", "mem": 64})
    with app.app_context():
        assert core.listVms() == []
    assert list(storage.vms_dir.iterdir()) == []


def test_an_image_swapped_after_placement_is_caught_by_the_worker(app, tmp_path, image):
    """The worker reads the image afresh: a file replaced after the request was checked."""
    storage = app.extensions["nube"].storage
    storage.image_info(image)  # cached as a good raw image
    secret = make_image(tmp_path / "secret.raw", size="1M")
    path = storage.images_dir / image
    stat = path.stat()
    path.unlink()
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret), str(path)],
        check=True,
    )
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(InvalidInput, match="backing file"):
        storage.create_disk("vm1", image)
    assert list(storage.vms_dir.iterdir()) == []


# Found by the second review.


def test_a_temp_disk_swapped_for_a_symlink_changes_no_controller_file(app, image, tmp_path):
    """A host that swaps the disk in the making for a symlink gets no chmod or chown through it
    (the disk is made in the controller's own staging folder, set through O_NOFOLLOW)."""
    storage = app.extensions["nube"].storage
    victim = tmp_path / "shadow"
    victim.write_text("secret")
    victim.chmod(0o600)
    real_run = storage.qemu_img.run

    def run_then_swap(args, log=None):
        out = real_run(args, log)
        if args[0] not in ("create", "convert"):
            return out
        made = Path(args[-1])
        assert made.parent.name == ".staging" and made.parent.parent == storage.root
        made.unlink()
        made.symlink_to(victim)
        return out

    storage.qemu_img.run = run_then_swap
    with pytest.raises(OSError):
        storage.create_disk("vm1", image)
    assert victim.stat().st_mode & 0o777 == 0o600
    assert list(storage.vms_dir.iterdir()) == []


# Issue 9, finding 6: upload and disk temp files never stay.


def test_an_old_leftover_is_swept(app):
    storage = app.extensions["nube"].storage
    old = storage.images_dir / ".upload-0123456789abcdef.part"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    fresh = storage.images_dir / ".upload-fedcba9876543210.part"
    fresh.write_bytes(b"x")
    storage._staging()
    disk = storage.root / ".staging" / "vm1.0123abcd.part"
    disk.write_bytes(b"x")
    os.utime(disk, (time.time() - 3 * 86400,) * 2)
    assert sorted(storage.sweep_partials()) == [
        ".upload-0123456789abcdef.part",
        "vm1.0123abcd.part",
    ]
    assert fresh.exists() and not old.exists() and not disk.exists()
