"""First boot: hostname, SSH keys and user data checked, the NoCloud seed written and attached,
the boot log read back, the guest agent asked (libvirt's test driver has none)."""

import io
import json
import os
import xml.etree.ElementTree as ET

import libvirt
import pycdlib
import pytest
import yaml

from app import cloudinit, core
from app.adapters.seed_iso import make_seed_iso
from app.db import get_db
from app.errors import InvalidInput, OperationFailed
from app.serial_text import clean
from tests.conftest import csrf_token
from tests.factories import make_ssh_key
from tests.html import page


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    """A real public key line and its fingerprint as ssh-keygen prints it."""
    return make_ssh_key(tmp_path_factory.mktemp("keys"), "me@laptop")


@pytest.fixture
def host_fields():
    """A host on libvirt network 'default' (the test driver has it, active): VMs get a NIC."""
    return {"network": "default"}


def vms_dir(app):
    return app.extensions["nube"].storage.vms_dir


def read_iso(path):
    """{name: text} of an ISO's files by their Rock Ridge names, and its volume id."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        files = {}
        for child in iso.list_children(rr_path="/"):
            if child.is_dot() or child.is_dotdot():
                continue
            name = child.rock_ridge.name().decode()
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
            files[name] = out.getvalue().decode()
        return files, iso.pvd.volume_identifier.decode().strip()
    finally:
        iso.close()


# --- checks ----------------------------------------------------------------------------------


def test_keys_are_checked_and_fingerprinted(ssh_key):
    key, fingerprint = ssh_key
    assert cloudinit.check_ssh_keys(f"# mine\n{key}\n\n{key}\n") == [key]  # dupes dropped
    assert cloudinit.fingerprint(key) == fingerprint
    assert cloudinit.describe_key(key) == {
        "type": "ssh-ed25519",
        "fingerprint": fingerprint,
        "comment": "me@laptop",
    }


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "not a public key"),
        ("ssh-ed25519", "not a public key"),
        ("ssh-ed25519 not*base64", "not valid base64"),
        ("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA==", "not a ssh-rsa key"),
        ('from="10.0.0.1" ssh-ed25519 AAAA', "not a public key"),
        (42, "must be a list"),
        (["x"] * 40, "at most 32"),
    ],
)
def test_bad_keys_are_refused(keys, message):
    with pytest.raises(InvalidInput, match=message):
        cloudinit.check_ssh_keys(keys)


def test_a_comment_with_control_characters_is_refused(ssh_key):
    with pytest.raises(InvalidInput, match="control characters"):
        cloudinit.check_ssh_key(ssh_key[0] + "\x1b[31m")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("#cloud-config\nruncmd: [unclosed\n", "not valid YAML at line"),
        ("#cloud-config\n- a list\n", "must be a mapping"),
        ("#cloud-config\n" + "[" * 20_000, "nested too deeply"),
        ("just text", "must start with '#cloud-config'"),
        ("#!/bin/sh\n" + "x" * 70_000, "at most 65536"),
        ("#!/bin/sh\n\x00", "NUL"),
        (["#cloud-config"], "must be text"),
    ],
)
def test_bad_user_data_is_refused(value, message):
    with pytest.raises(InvalidInput, match=message):
        cloudinit.check_user_data(value)


def test_good_user_data_passes():
    assert cloudinit.check_user_data("") == ""
    assert cloudinit.check_user_data("#!/bin/sh\r\necho hi\r\n") == "#!/bin/sh\necho hi\n"
    text = "#cloud-config\npackages: [htop]\n"
    assert cloudinit.check_user_data(text) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Web-1", "web-1"), ("db.lab.example", "db.lab.example")],
)
def test_hostnames(value, expected):
    assert cloudinit.check_hostname(value) == expected


@pytest.mark.parametrize("value", ["-web", "web_1", "a" * 64, "a..b", "10.0.0.1", "", "x y"])
def test_bad_hostnames(value):
    with pytest.raises(InvalidInput, match="hostname"):
        cloudinit.check_hostname(value)


def test_default_hostname_is_the_id_made_valid():
    assert cloudinit.default_hostname("web1") == "web1"
    assert cloudinit.default_hostname("Web_1.") == "web-1"


# --- the seed --------------------------------------------------------------------------------


def test_seed_iso_has_cidata_and_the_three_files(tmp_path, ssh_key):
    mac = cloudinit.mac_address("5e749d98-922b-420c-b03f-40efb02a6b45")
    files = cloudinit.seed_files("web1", "nube-x", "web1", [ssh_key[0]], "", mac)
    path = tmp_path / "seed.iso"
    path.write_bytes(make_seed_iso(files))
    found, volume = read_iso(path)
    assert volume == "cidata"
    assert sorted(found) == ["meta-data", "network-config", "user-data"]
    meta = yaml.safe_load(found["meta-data"])
    assert meta == {"instance-id": "nube-x", "local-hostname": "web1", "public-keys": [ssh_key[0]]}
    assert found["user-data"].startswith("#cloud-config")
    network = yaml.safe_load(found["network-config"])
    assert network["version"] == 1 and network["config"][0]["mac_address"] == mac


def test_no_network_config_without_a_nic():
    files = cloudinit.seed_files("web1", "nube-x", None, [], "#!/bin/sh\necho hi\n")
    assert sorted(files) == ["meta-data", "user-data"]
    assert files["user-data"] == b"#!/bin/sh\necho hi\n"
    assert yaml.safe_load(files["meta-data"])["local-hostname"] == "web1"


def test_add_vm_writes_and_attaches_the_seed(ctx, host, image, ssh_key):
    user_data = "#cloud-config\nruncmd:\n  - echo NUBE-MARK > /dev/ttyS0\n"
    core.addVm(
        {
            "id": "web1",
            "image": image,
            "mem": 64,
            "hostname": "Web-One",
            "ssh_keys": [ssh_key[0]],
            "user_data": user_data,
        }
    )
    seed = vms_dir(ctx) / "web1-seed.iso"
    # every VM file is Nube's to make and the hosts' (nobody over NFS) to write into
    for name in ("web1.qcow2", "web1-seed.iso", "web1.console.log"):
        info = (vms_dir(ctx) / name).stat()
        assert oct(info.st_mode & 0o777) == "0o644"
        assert (info.st_uid, info.st_gid) == (65534, 65534)
    assert (vms_dir(ctx) / "web1.console.log").read_bytes() == b""
    files, _volume = read_iso(seed)
    meta = yaml.safe_load(files["meta-data"])
    assert meta["local-hostname"] == "web-one" and meta["public-keys"] == [ssh_key[0]]
    assert files["user-data"] == user_data
    dom = libvirt.open("test:///default").lookupByName("web1")
    desc = ET.fromstring(dom.XMLDesc())
    mac = desc.find("devices/interface/mac").get("address")
    assert yaml.safe_load(files["network-config"])["config"][0]["mac_address"] == mac
    cdrom = desc.find("devices/disk[@device='cdrom']")
    assert cdrom.find("source").get("file") == "/mnt/iaas/vms/web1-seed.iso"
    log = desc.find("devices/serial/log")
    assert log.get("file") == "/mnt/iaas/vms/web1.console.log"
    # the seed's contents stay in the VM's row, out of the operation's input everyone reads
    op = get_db().execute("SELECT input FROM operations WHERE kind = 'vm.create'").fetchone()
    stored = json.loads(op["input"])
    assert stored["hostname"] == "web-one" and stored["ssh_keys"] == [ssh_key[0]]
    assert stored["user_data"] == len(user_data) and "NUBE-MARK" not in op["input"]
    oplog = "\n".join(r[0] for r in get_db().execute("SELECT message FROM operation_log"))
    assert "cloud-init seed ready: vms/web1-seed.iso (hostname web-one, 1 SSH key" in oplog

    (vms_dir(ctx) / "web1.console.log").write_text("boot\n")
    (vms_dir(ctx) / "web1.console.log.0").write_text("older boot\n")
    core.removeVm("web1")
    assert sorted(os.listdir(vms_dir(ctx))) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"hostname": "bad_name"}, "invalid hostname"),
        ({"ssh_keys": ["ssh-ed25519 AAAA"]}, "SSH key 1"),
        ({"user_data": "#cloud-config\n: : :\n"}, "not valid YAML"),
    ],
)
def test_bad_first_boot_input_changes_nothing(ctx, host, image, extra, message):
    operations = get_db().execute("SELECT COUNT(*) FROM operations").fetchone()[0]
    with pytest.raises(InvalidInput, match=message):
        core.addVm({"id": "web1", "image": image, "mem": 64, **extra})
    assert core.listVms() == [] and os.listdir(vms_dir(ctx)) == []
    assert get_db().execute("SELECT COUNT(*) FROM operations").fetchone()[0] == operations


def test_a_leftover_file_of_the_same_name_is_refused(ctx, host, image):
    (vms_dir(ctx) / "web1.console.log").write_text("an earlier VM's boot\n")
    with pytest.raises(InvalidInput, match=r"vms/web1.console.log already exists"):
        core.addVm({"id": "web1", "image": image, "mem": 64})
    assert core.listVms() == []


def test_a_failed_create_leaves_no_seed(ctx, host, image, monkeypatch):
    storage = ctx.extensions["nube"].storage
    monkeypatch.setattr(
        ctx.extensions["nube"].hypervisor,
        "define",
        lambda host, xml: (_ for _ in ()).throw(OperationFailed("libvirt said no")),
    )
    with pytest.raises(OperationFailed, match="libvirt said no"):
        core.addVm({"id": "web1", "image": image, "mem": 64})
    assert os.listdir(storage.vms_dir) == [] and core.listVms() == []


# --- the boot log ----------------------------------------------------------------------------

GRUB_AND_PROMPT = (
    b"\x1b[2J\x1b[1;1HGNU GRUB  version 2.06\r\n"
    b"[  OK  ] \x1b[0;32mStarted\x1b[0m ssh.service.\r\n"
    b"progress 10%\rprogress 100%\r\n"
    b"Cloud-init v. 22.4.2 finished at Wed, 02 Dec 2026\r\n"
    b"\r\nDebian GNU/Linux 12 web1 ttyS0\r\n\r\nweb1 login: "
)


def test_serial_text_is_cleaned():
    assert clean(GRUB_AND_PROMPT) == [
        "GNU GRUB  version 2.06",
        "[  OK  ] Started ssh.service.",
        "progress 100%",
        "Cloud-init v. 22.4.2 finished at Wed, 02 Dec 2026",
        "",
        "Debian GNU/Linux 12 web1 ttyS0",
        "",
        "web1 login: ",
    ]


# Invisible characters a guest can print to make a boot log line read as something it is not:
# Cf (soft hyphen, zero-width joiner, word joiner, invisible times, a tag, an interlinear
# annotation, the Arabic letter mark), Zl, Zp, Co (private use) and Cn (unassigned).
INVISIBLE = "\u00ad\u200d\u2060\u2062\U000e0041\ufff9\u061c\u2028\u2029\ue000\U000f0000\u0378"


def test_the_boot_log_keeps_no_invisible_character(ctx, host, image):
    core.addVm({"id": "web1", "image": image, "mem": 64})
    spaced = "ro\u00a0ot"  # a no-break space reads as a space
    line = f"web1 lo{INVISIBLE}gin:\t{spaced}\r\n".encode()
    (vms_dir(ctx) / "web1.console.log").write_bytes(line + b"ok\xff\r\n")
    assert core.consoleLog("web1") == "web1 login:\tro ot\nok\ufffd"
    assert clean(line) == ["web1 login:\tro ot", ""]


def test_console_log_tail_and_follow(ctx, host, image):
    core.addVm({"id": "web1", "image": image, "mem": 64})
    assert core.consoleLog("web1") == ""
    log = vms_dir(ctx) / "web1.console.log"
    log.write_bytes(GRUB_AND_PROMPT)
    assert core.consoleLog("web1", lines=2) == "\nweb1 login: "
    assert core.consoleLog("web1").startswith("GNU GRUB")
    for bad in (0, -1, "10", True, 10**6):
        with pytest.raises(core.InvalidInput, match="lines"):
            core.consoleLog("web1", lines=bad)
    with pytest.raises(core.NotFound):
        core.consoleLog("nope")

    from app.services import boot_log

    first = boot_log.follow("web1", "0")
    assert first["lines"][-1] == "" and first["partial"] == "web1 login: "
    assert first["offset"] == len(GRUB_AND_PROMPT) - len(b"web1 login: ")
    with log.open("ab") as f:
        f.write(b"\r\n")
    second = boot_log.follow("web1", str(first["offset"]))
    assert second["lines"] == ["web1 login: "] and second["partial"] == ""
    log.write_bytes(b"new boot\n")  # rotated by virtlogd: smaller than the offset
    third = boot_log.follow("web1", str(second["offset"]))
    assert third["restarted"] and third["lines"] == ["new boot"]
    with pytest.raises(InvalidInput, match="offset"):
        boot_log.follow("web1", "-5")


def test_a_symlinked_console_log_is_never_followed(ctx, host, image, tmp_path):
    core.addVm({"id": "web1", "image": image, "mem": 64})
    secret = tmp_path / "secret"
    secret.write_text("controller secret\n")
    (vms_dir(ctx) / "web1.console.log").unlink()  # as root could on an all-in-one install
    os.symlink(secret, vms_dir(ctx) / "web1.console.log")
    with pytest.raises(OperationFailed, match="not a plain file"):
        core.consoleLog("web1")
    core.removeVm("web1")
    assert secret.read_text() == "controller secret\n"  # the link went, not its target
    assert not os.path.lexists(vms_dir(ctx) / "web1.console.log")


# --- pages -----------------------------------------------------------------------------------


def create_from_form(client, image, **fields):
    """Post the create form for VM web1 (64 MiB, automatic placement) with fields."""
    form = {"id": "web1", "image": image, "mem": "64", "vcpus": "1", "host": "", **fields}
    return client.post("/vms/new", data={"csrf_token": csrf_token(client, "/vms/new"), **form})


def test_create_form_takes_keys_and_the_page_shows_them(
    app, admin_client, operator_client, host, image, ssh_key
):
    key, fingerprint = ssh_key
    response = create_from_form(
        admin_client,
        image,
        hostname="",
        ssh_keys=f"{key}\r\n",
        user_data="#cloud-config\r\nruncmd: [echo hi]\r\n",
    )
    assert response.status_code == 302
    html = admin_client.get("/vms/web1").get_data(as_text=True)
    doc = page(html)
    assert doc.by_id("vm-hostname").text == "web1"
    assert fingerprint in doc.by_id("ssh-keys").text
    assert (
        '<pre class="log rounded mt-2" id="user-data">#cloud-config\nruncmd: [echo hi]\n</pre>'
        in html
    )
    assert doc.by_id("boot-log-card")["data-url"] == "/vms/web1/boot-log.json"
    assert admin_client.get("/vms/web1/guest.json").get_json() == {"guest": None}
    # user data may hold passwords: an operator who did not create the VM sees its size only
    other = page(operator_client.get("/vms/web1"))
    assert other.by_id("user-data-hidden").text.startswith("User data: 32 characters")
    assert not other.find(id="user-data")

    (vms_dir(app) / "web1.console.log").write_bytes(GRUB_AND_PROMPT)
    data = admin_client.get("/vms/web1/boot-log.json").get_json()
    assert data["partial"] == "web1 login: " and "GNU GRUB  version 2.06" in data["lines"]
    assert admin_client.get("/vms/web1/boot-log.json?offset=x").status_code == 400
    assert admin_client.get("/vms/nope/boot-log.json").status_code == 404


def test_a_bad_key_in_the_form_is_shown_and_nothing_made(app, admin_client, host, image):
    response = create_from_form(admin_client, image, ssh_keys="ssh-ed25519 AAAAnot-a-key")
    assert response.status_code == 200
    assert "SSH key 1" in response.get_data(as_text=True)
    with app.app_context():
        assert core.listVms() == []


def test_guest_json_for_a_running_vm_without_agent(app, admin_client, host, image):
    with app.app_context():
        core.addVm({"id": "web1", "image": image, "mem": 64, "start": True})
    assert admin_client.get("/vms/web1/guest.json").get_json() == {"guest": None}


# --- the host's network ----------------------------------------------------------------------


def test_a_host_on_a_missing_network_is_refused_naming_its_networks(ctx):
    with pytest.raises(
        core.OperationFailed,
        match=r"no libvirt network lab; its networks: default \(active\)\. Or set the host's VM"
        " network to none",
    ):
        core.addHost({"address": "127.0.0.1", "user": "root", "prepare": False, "network": "lab"})
    assert core.listHosts() == []


def test_an_inactive_network_is_refused(ctx):
    conn = libvirt.open("test:///default")
    conn.networkLookupByName("default").destroy()
    try:
        with pytest.raises(
            core.OperationFailed,
            match="network default on host .* is not active .* set the host's VM network to none",
        ):
            core.addHost({"address": "127.0.0.1", "user": "root", "prepare": False})
    finally:
        conn.networkLookupByName("default").create()
    assert core.listHosts() == []


def test_a_missing_bridge_is_refused_naming_the_bridges(ctx, provisioner):
    provisioner.facts = {"cpus": 2, "mem": 2048, "kvm": True, "bridges": ["br0"]}
    with pytest.raises(core.OperationFailed, match="no bridge br1; its bridges: br0"):
        core.addHost(
            {"address": "127.0.0.1", "user": "root", "password": "pw", "network": "bridge:br1"}
        )
    host = core.addHost(
        {"address": "127.0.0.1", "user": "root", "password": "pw", "network": "bridge:br0"}
    )
    assert host["state"] == "ready"


# --- stopping through the guest agent --------------------------------------------------------


def stop_log(ctx):
    """The newest vm.stop operation's log."""
    op = get_db().execute("SELECT id FROM operations WHERE kind = 'vm.stop' ORDER BY id DESC")
    op_id = op.fetchone()[0]
    return "\n".join(
        r[0]
        for r in get_db().execute(
            "SELECT message FROM operation_log WHERE operation_id = ? ORDER BY id", (op_id,)
        )
    )


def test_stop_asks_the_guest_agent_first(ctx, host, image, monkeypatch):
    hypervisor = ctx.extensions["nube"].hypervisor
    asked = []

    def agent_shutdown(host_, name):
        asked.append(name)
        libvirt.open("test:///default").lookupByName(name).shutdown()  # the guest obeys
        return True

    monkeypatch.setattr(hypervisor, "agent_shutdown", agent_shutdown)
    monkeypatch.setattr(hypervisor, "shutdown", lambda *a: pytest.fail("ACPI was not needed"))
    core.addVm({"id": "web1", "image": image, "mem": 64, "start": True})
    core.stopVm("web1")
    assert asked == ["web1"] and core.listVms()[0]["state"] == "stopped"
    log = stop_log(ctx)
    assert "asked web1 to shut down (through the guest agent)" in log and "forcing" not in log


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (lambda host_, name: False, "web1 has no guest agent answering: using ACPI"),
        (
            lambda host_, name: (_ for _ in ()).throw(core.HostUnreachable("agent timed out")),
            "the guest agent did not take the shutdown (agent timed out): using ACPI",
        ),
    ],
)
def test_without_an_agent_stop_falls_back_to_acpi(ctx, host, image, monkeypatch, answer, said):
    monkeypatch.setattr(ctx.extensions["nube"].hypervisor, "agent_shutdown", answer)
    core.addVm({"id": "web1", "image": image, "mem": 64, "start": True})
    core.stopVm("web1")
    log = stop_log(ctx)
    assert said in log and "asked web1 to shut down (ACPI power button)" in log
    assert core.listVms()[0]["state"] == "stopped"


class AgentDomain:
    """A running domain whose agent channel is connected and answers as a guest might."""

    def __init__(self, info, interfaces, connected="connected"):
        self.info, self.interfaces, self.connected = info, interfaces, connected

    def isActive(self):  # noqa: N802 (libvirt's name)
        return True

    def XMLDesc(self, flags=0):  # noqa: N802
        return (
            "<domain><devices><channel type='unix'><target type='virtio' "
            f"name='org.qemu.guest_agent.0' state='{self.connected}'/></channel></devices></domain>"
        )

    def agentSetResponseTimeout(self, timeout, flags):  # noqa: N802
        self.timeout = timeout

    def guestInfo(self, types, flags):  # noqa: N802
        return self.info

    def interfaceAddresses(self, source):  # noqa: N802
        return self.interfaces


def test_what_the_guest_says_is_cut_and_cleaned():
    from app.adapters.guest_agent import read_guest_info

    dom = AgentDomain(
        {"os.pretty-name": "Debian\x1b[2J 12", "hostname": "w" * 300, "os.kernel-release": "6.1"},
        {
            "lo": {"addrs": [{"addr": "127.0.0.1", "prefix": 8}]},
            "eth0": {
                "addrs": [
                    {"addr": "192.0.2.7", "prefix": 24},
                    {"addr": "<script>", "prefix": 24},
                    {"addr": "fe80::1", "prefix": "64"},
                    {"addr": "fe80::2%eth0\u202e" + "x" * 5000, "prefix": 64},
                ]
            },
        },
    )
    info = read_guest_info(dom)
    assert dom.timeout == 5  # libvirt would wait for ever on a silent agent
    assert info.os == "Debian 12" and len(info.hostname) == 255 and info.kernel == "6.1"
    assert info.addresses == [
        {"interface": "eth0", "address": "192.0.2.7", "prefix": 24},
        {"interface": "eth0", "address": "fe80::1", "prefix": 64},
    ]
    assert read_guest_info(AgentDomain({}, {}, connected="disconnected")) is None


def test_a_failed_create_is_retried_with_its_keys_but_not_without_its_user_data(
    ctx, host, image, ssh_key, monkeypatch
):
    from app.services import retry

    hypervisor = ctx.extensions["nube"].hypervisor
    define = hypervisor.define
    monkeypatch.setattr(
        hypervisor, "define", lambda h, x: (_ for _ in ()).throw(OperationFailed("no"))
    )
    for vm_id, extra in (("plain", {}), ("scripted", {"user_data": "#!/bin/sh\necho hi\n"})):
        with pytest.raises(OperationFailed):
            core.addVm({"id": vm_id, "image": image, "mem": 64, "ssh_keys": [ssh_key[0]], **extra})
    monkeypatch.setattr(hypervisor, "define", define)
    ops = {
        row["target_id"]: dict(row)
        for row in get_db().execute("SELECT * FROM operations WHERE kind = 'vm.create'")
    }
    assert retry.actions(ops["scripted"]) == ()
    with pytest.raises(InvalidInput, match="cannot be retried"):
        retry.retry(ops["scripted"]["id"], "admin")
    assert retry.actions(ops["plain"]) == ("retry",)
    retry.retry(ops["plain"]["id"], "admin")
    assert core.listVms()[0]["id"] == "plain"
    files, _volume = read_iso(vms_dir(ctx) / "plain-seed.iso")
    assert yaml.safe_load(files["meta-data"])["public-keys"] == [ssh_key[0]]
