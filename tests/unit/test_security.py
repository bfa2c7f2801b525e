"""The outside review's findings (issue 9), each pinned: what an attacker tried must fail."""

import io
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from app import core
from app.adapters.ansible import AnsibleProvisioner
from app.adapters.known_hosts import KnownHosts
from app.console.proxy import session_user_id
from app.db import get_db
from app.errors import HostKeyChanged, InvalidInput
from app.repositories import hosts as hosts_repo
from tests.conftest import ADMIN_PASSWORD, OPERATOR_PASSWORD, csrf_token, login, make_image
from tests.factories import gen_host
from tests.wait import join_all

FIXTURE_PLAYS = Path(__file__).parent.parent / "fixtures" / "plays"
TEMPLATE_ADDRESS = "fe80::1%{{lookup('pipe','id>/tmp/nube-pwned')}},127.0.0.2"


def _host(app, **fields):
    """A ready host on the test driver (prepared through the recording provisioner)."""
    return gen_host(app, **{"password": "sudo-pw", "prepare": True, **fields})


# 1. Host address -> code execution on the controller ------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        TEMPLATE_ADDRESS,
        "fe80::1%eth0",
        "127.0.0.2,127.0.0.3",
        "host name",
        "-oProxyCommand=id",
        "127.0.0.2\nhost: x",
        "{{ 7*7 }}",
        "[::1]",
        "999.1.1.1",
        "127.1",
        "0x7f.1",
        "0x0a000005",
        "10.0.0.5.17",
        "::ffff:10.0.0.5",
        "0.0.0.0",
        "::",
        "224.0.0.1",
    ],
)
def test_addresses_outside_the_allow_list_are_refused(app, provisioner, address):
    refused = "not a host name or IP address|names no single host|write the IPv4 address"
    with app.app_context(), pytest.raises(InvalidInput, match=refused):
        core.addHost({"address": address, "user": "root", "password": "pw"})
    with app.app_context():
        assert core.listHosts() == []
    assert provisioner.runs == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("user", "root{{x}}"), ("user", "ro\not"), ("name", "h1\nx"), ("network", "net\nx")],
)
def test_other_host_fields_are_allow_listed_too(app, field, value):
    data = {"address": "127.0.0.1", "user": "root", "password": "pw", field: value}
    with app.app_context(), pytest.raises(InvalidInput):
        core.addHost(data)


def test_the_provisioner_checks_a_stored_address_again_before_any_run(tmp_path):
    """A row written before the allow-list existed never reaches an inventory."""
    provisioner = AnsibleProvisioner(
        FIXTURE_PLAYS, tmp_path / "runner", tmp_path / "key", tmp_path / "known_hosts"
    )
    host = {"name": "h1", "address": TEMPLATE_ADDRESS, "user": "root"}
    with pytest.raises(InvalidInput):
        provisioner.run("echo.yaml", host=host, extravars={"value": "x"})
    assert not (tmp_path / "runner").exists() or not any((tmp_path / "runner").iterdir())


@pytest.mark.slow  # a real ansible-runner playbook
def test_variables_reach_ansible_as_data_and_the_worker_environment_stays_out(
    tmp_path, monkeypatch
):
    """A template in a variable is never evaluated (real ansible-runner); NUBE_* secrets of the
    worker's environment reach neither the play nor the run folder's artifacts."""
    marker = tmp_path / "pwned"
    monkeypatch.setenv("NUBE_SECRET_KEY", "secret-key-marker-9431")
    monkeypatch.setenv("NUBE_ADMIN_PASSWORD", "admin-password-marker-9431")
    provisioner = AnsibleProvisioner(
        FIXTURE_PLAYS, tmp_path / "runner", tmp_path / "key", tmp_path / "known_hosts"
    )
    payload = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    facts = provisioner.run("echo.yaml", extravars={"value": payload})
    assert facts["value"] == payload  # passed through literally
    assert not marker.exists()
    assert facts["secret_env"] == ""
    leaked = subprocess.run(
        ["grep", "-rl", "marker-9431", str(tmp_path / "runner")], capture_output=True, text=True
    )
    assert leaked.stdout == ""
    command = next((tmp_path / "runner").glob("*/artifacts/*/command"))
    assert "NUBE_SECRET_KEY" not in command.read_text()


# Known hosts: only the asked name, a changed key said plainly, an explicit accept ------------


@pytest.fixture
def fake_keyscan(tmp_path, monkeypatch):
    """ssh-keyscan replaced by a script that prints the lines in tmp_path/offered."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ssh-keyscan"
    script.write_text(f"#!/bin/sh\ncat {tmp_path / 'offered'}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    keys = {}
    for name in ("old", "new"):
        path = tmp_path / f"key-{name}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        keys[name] = " ".join(Path(f"{path}.pub").read_text().split()[:2])

    def offer(*lines):
        (tmp_path / "offered").write_text("".join(line + "\n" for line in lines))

    return keys, offer


def _fingerprint(key):
    return subprocess.run(
        ["ssh-keygen", "-l", "-f", "-"], input=f"x {key}\n", capture_output=True, text=True
    ).stdout.split()[1]


def test_keys_offered_under_another_name_are_never_recorded(tmp_path, fake_keyscan):
    keys, offer = fake_keyscan
    known = KnownHosts(tmp_path / "known_hosts")
    offer(f"127.0.0.9 {keys['old']}", f"127.0.0.2 {keys['new']}")
    assert known.ensure("127.0.0.2") == keys["new"]
    assert "127.0.0.9" not in (tmp_path / "known_hosts").read_text()
    offer(f"127.0.0.9 {keys['old']}")
    with pytest.raises(core.HostUnreachable):
        known.ensure("127.0.0.3")  # no line for the name asked: nothing recorded


def test_a_changed_host_key_is_named_and_only_a_confirmed_one_accepted(tmp_path, fake_keyscan):
    keys, offer = fake_keyscan
    known = KnownHosts(tmp_path / "known_hosts")
    offer(f"127.0.0.2 {keys['old']}")
    known.ensure("127.0.0.2")
    known.check_unchanged("127.0.0.2")  # same key: nothing to say
    offer(f"127.0.0.2 {keys['new']}")  # the host was reinstalled
    with pytest.raises(HostKeyChanged) as changed:
        known.check_unchanged("127.0.0.2")
    message = str(changed.value)
    assert _fingerprint(keys["old"]) in message and _fingerprint(keys["new"]) in message
    with pytest.raises(HostKeyChanged):
        known.replace("127.0.0.2", _fingerprint(keys["old"]))  # not what is offered
    assert known.ensure("127.0.0.2") == keys["old"]
    # a second key type answered by someone else is never recorded with the confirmed one
    offer(f"127.0.0.2 {keys['new']}", f"127.0.0.2 {keys['old']}")
    assert known.replace("127.0.0.2", _fingerprint(keys["new"])) == keys["new"]
    assert known.ensure("127.0.0.2") == keys["new"]
    assert keys["old"] not in (tmp_path / "known_hosts").read_text()
    known.forget("127.0.0.2")
    assert known.recorded("127.0.0.2") == ""


def test_accepting_a_new_host_key_is_for_admins_and_audited(
    app, provisioner, admin_client, operator_client
):
    provisioner.offered_keys["127.0.0.1"] = "ssh-ed25519 AAAAold"
    host = _host(app)
    provisioner.offered_keys["127.0.0.1"] = "ssh-ed25519 AAAAnew"
    url = f"/hosts/{host['id']}/accept-key"
    fingerprint = "SHA256:" + "A" * 43
    provisioner.offered_keys["127.0.0.1"] = fingerprint  # the fake's key is its fingerprint
    data = {"fingerprint": fingerprint}
    token = csrf_token(operator_client, f"/hosts/{host['id']}")
    assert operator_client.post(url, data={**data, "csrf_token": token}).status_code == 403
    token = csrf_token(admin_client, f"/hosts/{host['id']}")
    response = admin_client.post(url, data={**data, "csrf_token": token})
    assert response.status_code == 302
    assert provisioner.known_keys["127.0.0.1"] == fingerprint
    with app.app_context():
        actions = [r[0] for r in get_db().execute("SELECT action FROM audit").fetchall()]
    assert "host.accept_key" in actions


def test_a_failed_add_forgets_the_key_it_recorded(app, provisioner):
    provisioner.offered_keys["127.0.0.1"] = "ssh-ed25519 AAAAkey"
    provisioner.fail["host_add.yaml"] = "boom"
    with app.app_context(), pytest.raises(core.OperationFailed):
        core.addHost({"address": "127.0.0.1", "user": "root", "password": "pw"})
    assert "127.0.0.1" not in provisioner.known_keys


# 2. The stored sudo password follows an address change -----------------------------------


def test_a_new_address_needs_the_password_again(app, provisioner):
    host = _host(app)
    runs_before = len(provisioner.runs)
    with app.app_context(), pytest.raises(InvalidInput, match="needs the sudo password"):
        core.updateHost(host["id"], {"address": "127.0.0.5"})
    assert len(provisioner.runs) == runs_before  # nothing ran, nothing was sent anywhere
    with app.app_context():
        assert core.listHosts()[0]["address"] == "127.0.0.1"
        core.updateHost(host["id"], {"address": "127.0.0.5", "password": "the-new-one"})
        assert core.listHosts()[0]["address"] == "127.0.0.5"
    last = [run for run in provisioner.runs if run.playbook == "host_add.yaml"][-1]
    assert last.host["address"] == "127.0.0.5" and last.had_password


def test_a_stored_password_never_goes_to_another_address(app, provisioner):
    """Even a row changed behind the service's back: the secret is bound to its address."""
    host = _host(app)
    with app.app_context():
        conn = get_db()
        hosts_repo.update(conn, host["id"], address="127.0.0.6")
        assert hosts_repo.secret(conn, host["id"]) is None
        with pytest.raises(core.OperationFailed, match="sudo password is needed"):
            core.removeHost(host["id"])
    assert not any(
        run.had_password and run.playbook == "host_remove.yaml" for run in provisioner.runs
    )


# 3. Base images are checked at use ---------------------------------------------------------


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


# 4. Login throttling -----------------------------------------------------------------------


@pytest.fixture
def config_overrides():
    return {"LOGIN_RATE_LIMIT": 3}


def _client(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _try(client, username, password):
    return login(client, username, password).status_code


def test_logging_into_ones_own_account_clears_no_one_elses_failures(app):
    client = _client(app, "10.9.0.1")
    assert [_try(client, "admin", "guess-1"), _try(client, "admin", "guess-2")] == [401, 401]
    assert _try(_client(app, "10.9.0.1"), "oper", OPERATOR_PASSWORD) == 302
    assert _try(client, "admin", "guess-3") == 401
    assert _try(client, "admin", ADMIN_PASSWORD) == 429  # the right one too: still throttled


def test_parallel_guesses_are_counted_before_they_are_checked(app):
    results, barrier = [], threading.Barrier(8, timeout=30)

    def guess(n):
        client = _client(app, "10.9.0.2")
        token = csrf_token(client, "/login")
        barrier.wait()
        response = client.post(
            "/login", data={"username": "admin", "password": f"g{n}", "csrf_token": token}
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    join_all(threads, timeout=60, message="the parallel login guesses")
    assert sorted(results) == [401] * 3 + [429] * 5
    with app.app_context():
        failed = (
            get_db()
            .execute("SELECT COUNT(*) FROM audit WHERE action = 'login.failed'")
            .fetchone()[0]
        )
        throttled = (
            get_db()
            .execute("SELECT COUNT(*) FROM audit WHERE action = 'login.throttled'")
            .fetchone()[0]
        )
    assert (failed, throttled) == (3, 5)


def test_one_users_typos_lock_out_no_one_else_behind_the_same_address(app):
    tunnel = _client(app, "127.0.0.1")
    for n in range(3):
        assert _try(tunnel, "oper", f"typo-{n}") == 401
    assert _try(tunnel, "oper", "typo-4") == 429
    assert _try(_client(app, "127.0.0.1"), "admin", ADMIN_PASSWORD) == 302


def test_guessing_from_many_addresses_never_locks_out_the_owner_at_home(app):
    assert _try(_client(app, "10.8.0.1"), "admin", ADMIN_PASSWORD) == 302  # home, known
    for n in range(12):  # 4 x the limit, from addresses that each stay under it
        assert _try(_client(app, f"10.7.0.{n}"), "admin", f"guess-{n}") == 401
    assert _try(_client(app, "10.7.1.1"), "admin", "guess-x") == 429  # a new address waits
    assert _try(_client(app, "10.8.0.1"), "admin", ADMIN_PASSWORD) == 302  # the owner does not


# 5. Sessions end on logout, password change and removal --------------------------------------


def _session_cookie(client):
    return client.get_cookie("session").value


def _with_cookie(app, value):
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def test_a_copied_session_cookie_dies_with_logout(app, admin_client):
    stolen = _session_cookie(admin_client)
    assert _with_cookie(app, stolen).get("/hosts/").status_code == 200
    assert session_user_id(app, f"session={stolen}") is not None
    token = csrf_token(admin_client, "/")
    admin_client.post("/logout", data={"csrf_token": token})
    assert _with_cookie(app, stolen).get("/hosts/").status_code == 302
    assert session_user_id(app, f"session={stolen}") is None  # the console proxy agrees


def test_an_admin_password_reset_ends_the_users_sessions(app, admin_client, operator_client):
    stolen = _session_cookie(operator_client)
    with app.app_context():
        oper_id = get_db().execute("SELECT id FROM users WHERE username = 'oper'").fetchone()[0]
    token = csrf_token(admin_client, "/users/")
    response = admin_client.post(
        f"/users/{oper_id}/password",
        data={"password": "brand-new-pw-1", "confirm": "brand-new-pw-1", "csrf_token": token},
    )
    assert response.status_code == 302
    assert _with_cookie(app, stolen).get("/hosts/").status_code == 302
    assert operator_client.get("/hosts/").status_code == 302


def _user_sessions(app, username):
    """The token hashes of a user's live server-side sessions."""
    with app.app_context():
        rows = (
            get_db()
            .execute(
                "SELECT s.token_hash FROM user_sessions s JOIN users u ON u.id = s.user_id"
                " WHERE u.username = ?",
                (username,),
            )
            .fetchall()
        )
    return {row[0] for row in rows}


def test_changing_ones_password_ends_every_session_and_issues_a_new_one(app, admin_client):
    other = app.test_client()
    assert login(other, "admin", ADMIN_PASSWORD).status_code == 302
    old_cookie = _session_cookie(admin_client)
    copy = _with_cookie(app, old_cookie)  # a thief's copy of the very cookie that changes it
    assert copy.get("/hosts/").status_code == 200
    before = _user_sessions(app, "admin")
    token = csrf_token(admin_client, "/account/password")
    response = admin_client.post(
        "/account/password",
        data={
            "current": ADMIN_PASSWORD,
            "new": "another-password-1",
            "confirm": "another-password-1",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert admin_client.get("/hosts/").status_code == 200  # the tab that changed it stays in
    assert _session_cookie(admin_client) != old_cookie
    after = _user_sessions(app, "admin")
    assert len(after) == 1 and not after & before  # one session, and a new one
    assert copy.get("/hosts/").status_code == 302  # the copied cookie is out
    assert other.get("/hosts/").status_code == 302  # and every other session
    assert session_user_id(app, f"session={old_cookie}") is None  # the console proxy agrees


def test_a_removed_users_session_ends(app, admin_client, operator_client):
    with app.app_context():
        oper_id = get_db().execute("SELECT id FROM users WHERE username = 'oper'").fetchone()[0]
    token = csrf_token(admin_client, "/users/")
    assert (
        admin_client.post(f"/users/{oper_id}/remove", data={"csrf_token": token}).status_code == 302
    )
    with app.app_context():
        assert (
            get_db().execute("SELECT COUNT(*) FROM users WHERE id = ?", (oper_id,)).fetchone()[0]
            == 0
        )
    assert operator_client.get("/hosts/").status_code == 302


# 6. Upload temp files never stay ------------------------------------------------------------


def _leftovers(app):
    return [p.name for p in app.extensions["nube"].storage.images_dir.iterdir()]


def test_several_parts_under_one_field_leave_nothing(app, admin_client):
    token = csrf_token(admin_client, "/images/")
    admin_client.post(
        "/images/upload",
        content_type="multipart/form-data",
        data={
            "csrf_token": token,
            "name": "x.raw",
            "file": [(io.BytesIO(b"a" * 4096), "a.raw"), (io.BytesIO(b"b" * 4096), "b.raw")],
        },
    )
    assert [n for n in _leftovers(app) if n.startswith(".")] == []


def test_a_body_cut_short_leaves_nothing(app, admin_client):
    token = csrf_token(admin_client, "/images/")
    boundary = "nubeboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.raw"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + b"z" * 200_000  # the client stops sending here
    response = admin_client.post(
        "/images/upload",
        input_stream=io.BytesIO(body),
        content_type=f"multipart/form-data; boundary={boundary}",
        content_length=len(body) + 1_000_000,
    )
    assert response.status_code in (400, 413)
    assert [n for n in _leftovers(app) if n.startswith(".")] == []


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


# 7. Placement race with a queued host change ------------------------------------------------


def test_a_host_whose_change_is_queued_receives_no_vm(app, image):
    host = _host(app)
    with app.app_context():
        conn = get_db()
        assert hosts_repo.claim_task(conn, host["id"], "preparing", 99)
        with pytest.raises(InvalidInput, match="host is preparing"):
            core.addVm({"id": "vm1", "image": image, "mem": 64})
        assert core.listVms() == []
        hosts_repo.clear_task(conn, host["id"], 99)
        assert core.addVm({"id": "vm1", "image": image, "mem": 64})["host"] == host["id"]


# 8. Huge numbers from a request --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/vms/?page=" + "1" + "0" * 30,
        "/hosts/?page=" + "9" * 400,
        "/operations/?page=" + "1" + "0" * 30,
        "/users/audit?page=" + "1" + "0" * 30,
        "/operations/" + "1" + "0" * 30,
        "/hosts/" + "1" + "0" * 30,
        "/vms/?page=-5",
    ],
)
def test_huge_numbers_never_crash_a_page(admin_client, path):
    assert admin_client.get(path).status_code in (200, 404)


def test_a_huge_after_on_an_operation_log_is_bounded(app, admin_client, image):
    _host(app)
    with app.app_context():
        core.addVm({"id": "vm1", "image": image, "mem": 64})
    response = admin_client.get("/operations/1/log.json?after=" + "1" + "0" * 30)
    assert response.status_code == 200 and response.get_json()["log"] == []


# 9. IPv6 hosts -------------------------------------------------------------------------------


def test_ipv6_hosts_get_a_bracketed_libvirt_uri(app):
    with app.app_context():
        host = core.addHost({"address": "::1", "user": "root", "prepare": False, "name": "v6"})
    assert host["address"] == "::1"
    hypervisor = app.extensions["nube"].hypervisor
    hypervisor.uri_template = "qemu+libssh2://{user}@{address}/system"
    assert hypervisor.uri_for(host) == "qemu+libssh2://root@[::1]/system"
    assert hypervisor.uri_for({**host, "address": "127.0.0.2"}) == (
        "qemu+libssh2://root@127.0.0.2/system"
    )
    with pytest.raises(InvalidInput):
        hypervisor.uri_for({**host, "address": "::1%eth0"})


# The second review ---------------------------------------------------------------------------


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


def test_a_user_name_in_another_case_is_the_same_account_for_throttling(app):
    client = _client(app, "10.9.0.3")
    assert [_try(client, name, "guess") for name in ("admin", "Admin", "ADMIN")] == [401] * 3
    assert _try(client, "aDmin", ADMIN_PASSWORD) == 429


@pytest.mark.parametrize(
    "path", ["/hosts/?page=%C2%B2", "/live/hosts?ids=%C2%B2", "/operations/1/log.json?after=%C2%B2"]
)
def test_unicode_digits_are_not_numbers(admin_client, path):
    assert admin_client.get(path).status_code in (200, 400, 404)


def test_the_current_password_of_a_password_change_is_throttled(app, admin_client):
    def change(current):
        token = csrf_token(admin_client, "/account/password")
        admin_client.post(
            "/account/password",
            data={"current": current, "new": "x" * 12, "confirm": "x" * 12, "csrf_token": token},
        )

    for n in range(3):
        change(f"wrong-{n}")
    change(ADMIN_PASSWORD)  # refused now: throttled
    with app.app_context():
        actions = [r[0] for r in get_db().execute("SELECT action FROM audit").fetchall()]
    assert actions.count("user.password.failed") == 3
    assert "user.password.throttled" in actions and "user.password" not in actions
