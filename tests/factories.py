"""Test data builders in the style of CTFd's gen_* helpers: each makes one thing through the
real core API (or storage) with sensible defaults, and returns what the API returns."""

import base64
import hashlib
import subprocess
from pathlib import Path

from app import core
from app.repositories import operations as ops_repo
from app.services import users


def make_image(path, size="64M", fmt="raw", data=True):
    """A base image made with qemu-img, with a little data written when raw."""
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    if data and fmt == "raw":
        with open(path, "r+b") as handle:
            handle.write(b"nube" * 1024)
    return path


HOST_DEFAULTS = {"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h1"}


def gen_host(app, **fields):
    """A host registered without preparation on the app's libvirt URI (test:///default in
    the unit tier): the host dict core.addHost returns. Fields override the defaults."""
    with app.app_context():
        return core.addHost({**HOST_DEFAULTS, **fields})


def gen_prepared_host(app, **fields):
    """A ready host on the test driver, prepared through the recording provisioner with its
    sudo password stored: the host dict core.addHost returns."""
    return gen_host(app, **{"password": "sudo-pw", "prepare": True, **fields})


def gen_image(app, name="base.raw", **options):
    """A small base image made with qemu-img in the repository; returns its name."""
    make_image(app.extensions["nube"].storage.images_dir / name, **options)
    return name


def gen_vm(app, image, vm_id="vm1", mem=64, start=False, **fields):
    """A VM made through core.addVm (and started when start is true): the VM dict."""
    with app.app_context():
        vm = core.addVm({"id": vm_id, "image": image, "mem": mem, **fields})
        if start:
            core.startVm(vm_id)
            vm = core.listVms(f"id = {vm_id}")[0]
    return vm


def gen_user(app, username="user1", password="user1-password", role="operator", actor="test"):
    """A dashboard user made through the users service; returns its username."""
    with app.app_context():
        users.create(username, password, role, actor)
    return username


def make_ssh_key(folder, comment="owner@nube-test"):
    """A new ed25519 key pair in folder; (its public key line, ssh-keygen's fingerprint)."""
    path = Path(folder) / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{path}.pub"], check=True, capture_output=True, text=True
    )
    return path.with_suffix(".pub").read_text().strip(), listed.stdout.split()[1]


def cloud_init_fingerprint(key):
    """The fingerprint cloud-init prints in its authorized-keys table (sha256, hex pairs)."""
    digest = hashlib.sha256(base64.b64decode(key.split()[1])).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def gen_operation(conn, kind, target, name=None, requested_by="admin", worker=None):
    """A pending operation row on target ("vm:ID" or "host:ID"), as a request writes it, and
    claimed by worker when one is given (a running one): its id."""
    target_type, target_id = target.split(":", 1)
    op_id = ops_repo.insert(
        conn,
        kind=kind,
        target_type=target_type,
        target_id=target_id,
        target_name=name or target_id,
        requested_by=requested_by,
        input_data={},
    )
    if worker:
        assert ops_repo.claim(conn, op_id, worker)
    return op_id
