"""Known hosts (issue 9): only the asked name's key is recorded, a changed key is
named plainly, a new one is accepted only when confirmed, by an admin, and audited; a failed
add forgets the key it recorded."""

import os
import subprocess
from pathlib import Path

import pytest

from app import core
from app.adapters.known_hosts import KnownHosts
from app.db import get_db
from app.errors import HostKeyChanged
from tests.conftest import csrf_token
from tests.factories import gen_prepared_host as _host


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
