"""image.build: input checks, the work with a fake command runner (success publishes, failure
and cancel leave nothing), the real command runner and folder removal, the CLI, the web form,
and one real build (slow; cached outside the repository by tests/images.py)."""

import json
import os
import signal
import subprocess
import time

import pytest

from app import core
from app.adapters.commands import CommandFailed, CommandRunner
from app.adapters.image_builder import ImageBuilder, remove_folder
from app.db import connect
from app.errors import Busy, InvalidInput, OperationCanceled, OperationFailed
from app.ops.runner import abandon, execute
from app.repositories import operations as ops_repo
from app.services import image_spec, images
from tests.conftest import csrf_token
from tests.html import page
from tests.images import debian_image  # noqa: F401  (the session fixture)

GIB = 1 << 30


class FakeRunner:
    """Stands in for the command runner: records each command and does what the real one's
    output would be (a small tree, a core.img, a real small qcow2), or fails or is canceled
    where a test says."""

    def __init__(self):
        self.commands = []
        self.before = {}  # command name -> callable run before it (e.g. a cancel request)
        self.fail = set()  # command names that exit non-zero
        self.tree_at_mkfs = {}
        self.stdin = {}

    def missing(self, tools):
        """Every tool is there."""
        return []

    def run(self, args, *, log, check, env=None, stdin_text=None):
        """Record, maybe fail or stop, then make what the command makes."""
        log("$ " + " ".join(args))
        self.commands.append(args)
        name = args[0]
        self.stdin[name] = stdin_text
        if name in self.before:
            self.before[name]()
        check()
        if name in self.fail:
            raise CommandFailed(f"{name} failed (exit status 1): as the test asked")
        getattr(self, "_" + name.replace("-", "_").replace(".", "_"))(args)

    def _mmdebstrap(self, args):
        tree = next(path for path in args if path.endswith("/tree"))
        for folder in ("etc/ssh", "etc/cloud/cloud.cfg.d", "boot", "usr/bin"):
            os.makedirs(f"{tree}/{folder}")
        for key in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key"):
            with open(f"{tree}/etc/ssh/{key}", "w") as handle:
                handle.write("the build machine's key")
        with open(f"{tree}/etc/fstab", "w") as handle:
            handle.write("# UNCONFIGURED FSTAB\n")
        os.symlink("boot/vmlinuz-6.1.0-cloud-amd64", f"{tree}/vmlinuz")
        # a link out of the tree: configuring must replace it, never write through it
        os.symlink(self.victim, f"{tree}/etc/resolv.conf")

    def _sfdisk(self, args):
        pass  # the partition table is only checked by the real build's test

    def _mkfs_ext4(self, args):
        tree = args[args.index("-d") + 1]
        for root, _dirs, files in os.walk(tree):
            for name in files:
                path = os.path.join(root, name)
                relative = os.path.relpath(path, tree)
                if not os.path.islink(path):
                    with open(path, errors="replace") as handle:
                        self.tree_at_mkfs[relative] = handle.read()
                else:
                    self.tree_at_mkfs[relative] = "-> " + os.readlink(path)

    def _grub_mkimage(self, args):
        with open(args[args.index("-o") + 1], "wb") as handle:
            handle.write(b"CORE" * 1000)

    def _qemu_img(self, args):
        raw, out = args[-2], args[-1]
        size = str(os.path.getsize(raw))
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", out, size], check=True)


@pytest.fixture
def fake(app, tmp_path):
    """The app's image builder with a fake command runner and a small GRUB folder."""
    grub = tmp_path / "grub"
    grub.mkdir()
    (grub / "boot.img").write_bytes(bytes(range(256)) * 2)
    (grub / "ext2.mod").write_bytes(b"module")
    (grub / "moddep.lst").write_text("ext2:\n")
    (grub / "README").write_text("not copied")
    runner = FakeRunner()
    runner.victim = str(tmp_path / "victim.conf")
    (tmp_path / "victim.conf").write_text("nameserver 192.0.2.53\n")
    app.extensions["nube"].image_builder = ImageBuilder(runner=runner, grub_dir=grub)
    return runner


def repository(app):
    """The app's repository folder."""
    return app.extensions["nube"].storage.root


def leftovers(app):
    """Every file and folder in images/ and the staging folder."""
    root = repository(app)
    found = sorted(p.name for p in (root / "images").iterdir())
    if (root / ".staging").exists():
        found += sorted(f".staging/{p.name}" for p in (root / ".staging").iterdir())
    return found


def all_operations(app):
    """Every operation row, oldest first."""
    with app.app_context():
        from app.db import get_db

        return [dict(r) for r in reversed(ops_repo.page(get_db(), "", 100, 0)[0])]


def log_of(app, op_id):
    """An operation's log messages."""
    conn = connect(app.config["DATABASE"])
    try:
        return [line["message"] for line in ops_repo.log_lines(conn, op_id)]
    finally:
        conn.close()


# --- input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        ("debian12", "image must be a dict"),
        ({}, "name is required"),
        ({"name": "debian12", "mem": 5}, "unknown image field(s): mem"),
        ({"name": "../escape"}, "invalid image name"),
        ({"name": "a/b"}, "invalid image name"),
        ({"name": "debian12", "release": "Bookworm"}, "must be a Debian code name"),
        ({"name": "debian12", "release": "b"}, "must be a Debian code name"),
        ({"name": "debian12", "release": "bookworm; rm -rf /"}, "must be a Debian code name"),
        ({"name": "debian12", "size": "4X"}, "size must be bytes or a number with K, M, G or T"),
        ({"name": "debian12", "size": "4.5G"}, "size must be bytes or a number"),
        ({"name": "debian12", "size": True}, "size must be bytes or a number"),
        ({"name": "debian12", "size": "1G"}, "size must be between 2G and 64G"),
        ({"name": "debian12", "size": "65G"}, "size must be between 2G and 64G"),
        ({"name": "debian12", "size": 4 * GIB + 1}, "size must be a whole number of MiB"),
    ],
)
def test_bad_input_changes_nothing(app, fake, data, message):
    with app.app_context(), pytest.raises(InvalidInput) as error:
        core.buildImage(data)
    assert message in str(error.value)
    assert all_operations(app) == [] and leftovers(app) == [] and fake.commands == []


def test_sizes_and_names():
    assert image_spec.parse_size("4G") == 4 * GIB
    assert image_spec.parse_size("2048m") == 2 * GIB
    assert image_spec.parse_size(str(3 * GIB)) == image_spec.parse_size(3 * GIB) == 3 * GIB
    assert images._check_build({"name": "debian12"}) == {
        "name": "debian12.qcow2",
        "release": "bookworm",
        "size": 4 * GIB,
    }
    assert images._check_build({"name": "d.qcow2", "release": "trixie", "size": ""}) == {
        "name": "d.qcow2",
        "release": "trixie",
        "size": 4 * GIB,
    }


def test_refused_while_the_image_exists_or_is_being_built(app, fake):
    (repository(app) / "images" / "taken.qcow2").write_bytes(b"mine")
    with app.app_context():
        with pytest.raises(InvalidInput, match="image taken.qcow2 already exists"):
            core.buildImage({"name": "taken"})
        op_id = images.request_build({"name": "debian12"}, "someone")  # pending, not run
        with pytest.raises(Busy, match="image debian12.qcow2 is being built") as busy:
            core.buildImage({"name": "debian12.qcow2"})
    assert busy.value.operation_id == op_id
    assert [op["id"] for op in all_operations(app)] == [op_id]
    assert (repository(app) / "images" / "taken.qcow2").read_bytes() == b"mine"


@pytest.mark.parametrize(
    "field, stored, message",
    [
        ("release", "--hook-dir=/tmp/evil", "must be a Debian code name"),
        ("release", "bookworm main\nmenuentry", "must be a Debian code name"),
        ("size", 1 << 50, "size must be between"),
        ("size", "4G; rm", "size must be bytes"),
    ],
)
def test_a_tampered_stored_input_is_refused_at_use(app, fake, field, stored, message):
    with app.app_context():
        op_id = images.request_build({"name": "debian12"}, "someone")  # pending, not run
    conn = connect(app.config["DATABASE"])
    try:  # whoever can write the database rewrites the operation's input before it runs
        row = conn.execute("SELECT input FROM operations WHERE id = ?", (op_id,)).fetchone()
        spec = {**json.loads(row["input"]), field: stored}
        conn.execute("UPDATE operations SET input = ? WHERE id = ?", (json.dumps(spec), op_id))
    finally:
        conn.close()
    with app.app_context():
        execute(op_id, app)
    op = all_operations(app)[-1]
    assert op["status"] == "failed" and message in op["error"]
    assert fake.commands == [] and leftovers(app) == []


def test_a_tampered_target_name_is_refused_at_use(app, fake):
    with app.app_context():
        op_id = images.request_build({"name": "debian12"}, "someone")
    conn = connect(app.config["DATABASE"])
    try:
        conn.execute("UPDATE operations SET target_id = '../vms/x.qcow2' WHERE id = ?", (op_id,))
    finally:
        conn.close()
    with app.app_context():
        execute(op_id, app)
    assert all_operations(app)[-1]["status"] == "failed" and fake.commands == []


def test_every_command_ends_its_options_before_positional_values(app, fake):
    with app.app_context():
        core.buildImage({"name": "debian12", "release": "bookworm", "size": "2G"})
    mmdebstrap, sfdisk, mkfs, grub, convert = fake.commands
    assert mmdebstrap[mmdebstrap.index("--") + 1 :][:1] == ["bookworm"]
    assert sfdisk[-2] == "--" and mkfs[-3] == "--" and convert[-3] == "--"
    assert grub[grub.index("--") + 1 :] == ["biosdisk", "part_msdos", "ext2"]


# --- the work, with a fake command runner ---------------------------------------------------


def test_a_build_publishes_the_image_and_leaves_no_build_folder(app, fake, tmp_path):
    with app.app_context():
        info = core.buildImage({"name": "debian12", "size": "2G"})
        search = images.search()
    assert info == {
        "name": "debian12.qcow2",
        "format": "qcow2",
        "virtual_size": 2 * GIB,
        "actual_size": info["actual_size"],
    }
    image = repository(app) / "images" / "debian12.qcow2"
    assert oct(image.stat().st_mode & 0o777) == "0o644"
    assert leftovers(app) == ["debian12.qcow2"]  # the staging folder is empty
    assert search[0]["description"] == "Debian bookworm, built by Nube"
    assert search[0]["uploaded_by"] == "api"
    assert [c[0] for c in fake.commands] == [
        "mmdebstrap",
        "sfdisk",
        "mkfs.ext4",
        "grub-mkimage",
        "qemu-img",
    ]
    op = all_operations(app)[-1]
    assert (op["kind"], op["target_type"], op["target_id"], op["status"]) == (
        "image.build",
        "image",
        "debian12.qcow2",
        "succeeded",
    )
    assert json.loads(op["result"])["virtual_size"] == 2 * GIB
    assert (op["progress_done"], op["progress_total"]) == (5, 5)
    assert any(line.startswith("$ mmdebstrap --mode=root") for line in log_of(app, op["id"]))


def test_the_recipe(app, fake, tmp_path):
    with app.app_context():
        core.buildImage({"name": "debian12", "release": "bookworm", "size": "3G"})
    mmdebstrap, sfdisk, mkfs, grub, convert = fake.commands
    assert "--variant=minbase" in mmdebstrap and "bookworm" in mmdebstrap
    included = next(a for a in mmdebstrap if a.startswith("--include=")).split("=")[1].split(",")
    for package in ("linux-image-cloud-amd64", "cloud-init", "openssh-server", "qemu-guest-agent"):
        assert package in included
    tree = fake.tree_at_mkfs
    root_uuid = mkfs[mkfs.index("-U") + 1]
    assert tree["etc/fstab"] == f"UUID={root_uuid} / ext4 errors=remount-ro 0 1\n"
    assert tree["etc/machine-id"] == "" and tree["etc/resolv.conf"] == ""
    assert not [name for name in tree if name.startswith("etc/ssh/ssh_host_")]
    assert "datasource_list: [ NoCloud, None ]" in tree["etc/cloud/cloud.cfg.d/90_nube.cfg"]
    grub_cfg = tree["boot/grub/grub.cfg"]
    assert f"root=UUID={root_uuid} ro console=tty0 console=ttyS0,115200n8" in grub_cfg
    assert "terminal_output serial console" in grub_cfg and "set timeout=1" in grub_cfg
    assert {"boot/grub/i386-pc/ext2.mod", "boot/grub/i386-pc/moddep.lst"} <= set(tree)
    assert "boot/grub/i386-pc/README" not in tree
    # the link out of the tree was replaced, not written through
    assert (tmp_path / "victim.conf").read_text() == "nameserver 192.0.2.53\n"
    assert mkfs[-1] == f"{3 * 1024 * 1024 - 1024}k" and "offset=1048576" in mkfs
    assert grub[grub.index("-p") + 1] == "(hd0,msdos1)/boot/grub"
    assert convert[:4] == ["qemu-img", "convert", "-c", "-f"]
    assert sfdisk[0] == "sfdisk" and sfdisk[-1].endswith("/disk.raw")
    assert fake.stdin["sfdisk"] == "label: dos\nstart=2048, type=83, bootable\n"
    assert fake.stdin["mkfs.ext4"] is None


@pytest.mark.parametrize("command", ["mmdebstrap", "mkfs.ext4", "qemu-img"])
def test_a_failed_step_leaves_nothing(app, fake, command):
    fake.fail.add(command)
    with app.app_context(), pytest.raises(OperationFailed, match=f"{command} failed"):
        core.buildImage({"name": "debian12"})
    assert leftovers(app) == []
    assert all_operations(app)[-1]["status"] == "failed"
    with app.app_context():
        assert images.search() == []


def cancel_running_build(app):
    """Ask the running image.build to stop, as the operation page's Cancel button does."""
    conn = connect(app.config["DATABASE"])
    try:
        op = conn.execute("SELECT id FROM operations WHERE status = 'running'").fetchone()
        ops_repo.request_cancel(conn, op["id"])
    finally:
        conn.close()


@pytest.mark.parametrize("command", ["mmdebstrap", "qemu-img"])
def test_a_canceled_build_leaves_nothing(app, fake, command):
    fake.before[command] = lambda: cancel_running_build(app)
    with app.app_context(), pytest.raises(OperationFailed, match="canceled"):
        core.buildImage({"name": "debian12"})
    assert leftovers(app) == []
    op = all_operations(app)[-1]
    assert (op["status"], op["error"]) == ("canceled", "canceled on request")
    assert any("removed the build folder" in line for line in log_of(app, op["id"]))


def test_an_image_that_appears_meanwhile_is_kept_and_the_build_fails(app, fake):
    theirs = repository(app) / "images" / "debian12.qcow2"
    fake.before["qemu-img"] = lambda: theirs.write_bytes(b"copied in by hand")
    with app.app_context(), pytest.raises(OperationFailed, match="already exists"):
        core.buildImage({"name": "debian12"})
    assert theirs.read_bytes() == b"copied in by hand"
    assert leftovers(app) == ["debian12.qcow2"]


def test_the_undo_removes_a_dead_builds_folder(app, fake):
    with app.app_context():
        op_id = images.request_build({"name": "debian12"}, "someone")
    folder = repository(app) / ".staging" / f"image-build-{op_id}"
    (folder / "tree" / "etc").mkdir(parents=True)
    (folder / "disk.raw").write_bytes(b"half")
    assert abandon(op_id, "canceled", "test", app)
    assert leftovers(app) == []


# --- the real command runner and folder removal ----------------------------------------------


def test_the_runner_logs_lines_as_they_come_and_feeds_stdin():
    lines = []
    CommandRunner(poll=0.05).run(
        ["sh", "-c", "echo one; cat; echo three >&2"],
        log=lines.append,
        check=lambda: None,
        stdin_text="two\n",
    )
    assert lines == ["$ sh -c 'echo one; cat; echo three >&2'", "one", "two", "three"]


def test_the_runner_reports_a_failure_with_the_last_line():
    with pytest.raises(CommandFailed, match=r"sh failed \(exit status 3\): no space left"):
        CommandRunner(poll=0.05).run(
            ["sh", "-c", "echo working; echo no space left; exit 3"],
            log=lambda line: None,
            check=lambda: None,
        )


def test_a_stop_kills_the_whole_process_group():
    lines, checks = [], []

    def check():
        checks.append(1)
        if len(lines) >= 2:  # the command line and the background sleep's pid
            raise OperationCanceled("canceled on request")

    started = time.monotonic()
    with pytest.raises(OperationCanceled):
        CommandRunner(poll=0.05, grace=5).run(
            ["sh", "-c", "sleep 60 & echo $!; sleep 60"], log=lines.append, check=check
        )
    assert time.monotonic() - started < 5
    assert not alive(int(lines[1]))  # the grandchild went with the group


def alive(pid):
    """Whether a process runs (a zombie waiting for a reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_stubborn_command_is_killed_after_the_grace_period():
    lines = []

    def check():
        if len(lines) >= 2:
            raise OperationCanceled("time limit of 1s reached")

    with pytest.raises(OperationCanceled):
        CommandRunner(poll=0.05, grace=0.5).run(
            ["sh", "-c", "trap '' TERM; echo ignoring TERM; sleep 60"],
            log=lines.append,
            check=check,
        )
    assert lines[1] == "ignoring TERM"


def test_missing_tools_are_named(app, tmp_path):
    builder = ImageBuilder(grub_dir=tmp_path)
    builder.runner.missing = lambda tools: ["mmdebstrap", "grub-mkimage"]
    with pytest.raises(OperationFailed, match="install the Debian packages grub-pc-bin mmdebstrap"):
        builder.check_ready(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_removing_a_folder_unmounts_what_a_killed_mmdebstrap_left(tmp_path):
    folder = tmp_path / "image-build-1"
    proc = folder / "tree" / "proc"
    proc.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(proc)], check=False).returncode:
        pytest.skip("cannot mount here")
    (proc / "host-file").write_text("must not be deleted through the mount")
    remove_folder(folder)
    assert not folder.exists()
    with open("/proc/self/mounts") as mounts:
        assert str(proc) not in mounts.read()


def test_mirrors_follow_the_machines_apt_sources(tmp_path):
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main contrib\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\nTypes: deb\nURIs: https://vendor.example/apt\nSuites: stable\n"
        "Components: main\n\nTypes: deb-src\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm\nComponents: main\n"
    )
    (apt / "sources.list").write_text(
        "deb [arch=amd64 trusted=yes] http://old.example/debian bookworm main\n"
        "deb http://user:s3cret@private.example/debian bookworm main\n"  # never logged
        "deb http://apt.postgresql.example/pub bookworm-pgdg main\n"  # not Debian's suite
    )
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="Debian GNU/Linux"\nVERSION_CODENAME=bookworm\n')
    builder = ImageBuilder(apt_dir=apt, os_release=os_release)
    key = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    assert builder.mirrors("trixie") == [
        f"deb {key}http://mirror.example/debian trixie main contrib",
        f"deb {key}http://mirror.example/debian trixie-updates main contrib",
        "deb http://mirror.example/debian-security trixie-security main",
        "deb http://old.example/debian trixie main",  # no trusted=yes: signatures count
    ]
    assert builder.mirrors("sid") == [
        f"deb {key}http://mirror.example/debian sid main contrib",
        "deb http://old.example/debian sid main",
    ]
    assert ImageBuilder(apt_dir=apt, os_release=tmp_path / "none").mirrors("trixie") == []


# --- the CLI and the web form ---------------------------------------------------------------


def cli(app, *args):
    """Run `flask nube ARGS` (the real flask command pushes the app context)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=["nube", *args])


def test_the_cli_builds_and_prints_the_log(app, fake):
    result = cli(app, "image", "build", "debian12", "--size", "2G")
    assert result.exit_code == 0, result.output
    assert "$ mmdebstrap --mode=root" in result.output
    assert "image debian12.qcow2 built: qcow2" in result.output
    assert leftovers(app) == ["debian12.qcow2"]
    assert all_operations(app)[-1]["requested_by"] == "cli"


def test_the_cli_reports_refusals_and_failures(app, fake):
    result = cli(app, "image", "build", "debian12", "--size", "1G")
    assert result.exit_code == 1 and "size must be between 2G and 64G" in result.output
    fake.fail.add("mkfs.ext4")
    result = cli(app, "image", "build", "debian12")
    assert result.exit_code == 1
    assert "(image.build) failed: mkfs.ext4 failed" in result.output
    assert leftovers(app) == []


def test_the_cli_cancels_on_ctrl_c(app, fake):
    fake.before["mmdebstrap"] = lambda: (signal.raise_signal(signal.SIGINT), time.sleep(1.5))
    result = cli(app, "image", "build", "debian12")
    assert result.exit_code == 1 and "canceled" in result.output
    assert all_operations(app)[-1]["status"] == "canceled"
    assert leftovers(app) == []


def post_build(client, **fields):
    """Submit the images page's build form."""
    data = {"build-csrf_token": csrf_token(client, "/images/")}
    data.update({f"build-{key}": value for key, value in fields.items()})
    return client.post("/images/build", data=data)


def test_the_images_page_offers_the_build_form(app, operator_client):
    form = page(operator_client.get("/images/")).by_id("build-form")
    assert form["action"] == "/images/build" and form["method"] == "post"
    assert form.one("input", name="build-release")["value"] == "bookworm"
    assert form.one("input", name="build-size")["value"] == "4G"


def test_the_form_starts_the_operation_and_shows_its_page(app, operator_client, fake):
    response = post_build(operator_client, name="debian12", release="bookworm", size="2G")
    op = all_operations(app)[-1]
    assert response.status_code == 302
    assert response.headers["Location"] == f"/operations/{op['id']}"
    # the unit tier's queue runs operations at once
    assert (op["kind"], op["requested_by"], op["status"]) == ("image.build", "oper", "succeeded")
    assert leftovers(app) == ["debian12.qcow2"]
    shown = operator_client.get(f"/operations/{op['id']}")
    assert shown.status_code == 200 and "debian12.qcow2" in shown.get_data(as_text=True)
    lines = operator_client.get(f"/operations/{op['id']}/log.json").get_data(as_text=True)
    assert "$ mmdebstrap --mode=root" in lines


def test_the_form_refuses_bad_input_and_needs_csrf(app, admin_client, fake):
    response = post_build(admin_client, name="debian12", release="bookworm", size="99G")
    assert response.status_code == 302 and response.headers["Location"] == "/images/"
    assert page(admin_client.get("/images/")).alert("size must be between 2G and 64G", "danger")
    response = admin_client.post("/images/build", data={"build-name": "debian12"})
    assert response.status_code == 400
    assert all_operations(app) == [] and leftovers(app) == []


# --- one real build ---------------------------------------------------------------------------


def qemu_img_info(path):
    """qemu-img info of a file, as a dict."""
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(path)], capture_output=True, check=True
    ).stdout
    return json.loads(out)


@pytest.mark.slow  # a real build: mmdebstrap from this machine's apt sources, about 2 minutes
def test_a_real_build_is_a_bootable_debian_disk(debian_image, tmp_path):  # noqa: F811
    info = qemu_img_info(debian_image)
    assert info["format"] == "qcow2" and info["virtual-size"] == 4 * GIB
    assert "backing-filename" not in info and info["actual-size"] < 400 << 20  # compressed
    raw = tmp_path / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(debian_image), str(raw)], check=True)
    table = json.loads(subprocess.run(["sfdisk", "--json", str(raw)], capture_output=True).stdout)
    (partition,) = table["partitiontable"]["partitions"]
    assert (partition["start"], partition["type"], partition["bootable"]) == (2048, "83", True)
    with open("/usr/lib/grub/i386-pc/boot.img", "rb") as boot, open(raw, "rb") as disk:
        assert disk.read(440) == boot.read(440)
    filesystem = f"{raw}?offset={2048 * 512}"

    def cat(path):
        return subprocess.run(
            ["debugfs", "-R", f"cat {path}", filesystem], capture_output=True, text=True
        ).stdout

    fstab, grub_cfg = cat("/etc/fstab"), cat("/boot/grub/grub.cfg")
    assert fstab.startswith("UUID=") and " / ext4 " in fstab
    assert "console=ttyS0,115200n8" in grub_cfg and fstab.split()[0] in grub_cfg
    assert "NoCloud" in cat("/etc/cloud/cloud.cfg.d/90_nube.cfg")
    ssh = subprocess.run(
        ["debugfs", "-R", "ls /etc/ssh", filesystem], capture_output=True, text=True
    ).stdout
    assert "sshd_config" in ssh and "ssh_host_" not in ssh
    check = subprocess.run(["e2fsck", "-fn", filesystem], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_command_sees_none_of_the_workers_secrets(monkeypatch, tmp_path):
    from app.adapters.commands import CommandRunner

    monkeypatch.setenv("NUBE_SECRET_KEY", "do-not-leak")
    lines = []
    CommandRunner().run(["env"], log=lines.append, check=lambda: None, env={"TMPDIR": "/x"})
    assert "TMPDIR=/x" in lines and any(line.startswith("PATH=") for line in lines)
    assert not any("do-not-leak" in line for line in lines)
