"""What whoever can write the database (but holds none of Nube's keys) can no longer do
(issue 20, finding 3): send a host's sudo password to another machine or account. Rows are
changed here with plain SQL, as such a writer would."""

import json

import pytest
from cryptography.fernet import Fernet

from app import core
from app.db import get_db
from app.ops.runner import execute
from app.repositories import hosts as hosts_repo
from tests.factories import gen_host
from tests.factories import gen_prepared_host as _host


def _sql(app, statement, params=()):
    """Run one statement on the app's database (autocommit)."""
    with app.app_context():
        get_db().execute(statement, params)


def _removals_with_password(provisioner):
    """host_remove.yaml runs that were handed a password."""
    return [r for r in provisioner.runs if r.playbook == "host_remove.yaml" and r.had_password]


def test_a_redirected_address_gets_no_password(app, provisioner):
    host = _host(app)
    _sql(
        app,
        "UPDATE hosts SET address = '127.0.0.66', password_address = '127.0.0.66' WHERE id = ?",
        (host["id"],),
    )
    with app.app_context(), pytest.raises(core.OperationFailed) as failed:
        core.removeHost(host["id"])
    message = str(failed.value)
    assert "sudo password is needed to run host_remove.yaml" in message
    assert "given for root@127.0.0.1, not for root@127.0.0.66" in message
    assert _removals_with_password(provisioner) == []
    assert [r.playbook for r in provisioner.runs if r.host] == ["host_add.yaml"]  # only the add
    with app.app_context():
        assert core.listHosts()[0]["state"] == "error"  # kept, with the reason


def test_a_redirected_user_gets_no_password(app, provisioner):
    host = _host(app)
    _sql(app, "UPDATE hosts SET \"user\" = 'mallory' WHERE id = ?", (host["id"],))
    with app.app_context(), pytest.raises(core.OperationFailed, match="not for mallory@"):
        core.removeHost(host["id"])
    assert _removals_with_password(provisioner) == []


def test_another_hosts_sealed_password_is_refused(app, provisioner):
    first = _host(app, name="h1", address="127.0.0.1")
    second = gen_host(app, name="h2", address="127.0.0.2", prepare=False)
    _sql(
        app,
        "UPDATE hosts SET password_enc = (SELECT password_enc FROM hosts WHERE id = ?),"
        " password_address = address, prepared = 1 WHERE id = ?",
        (first["id"], second["id"]),
    )
    with app.app_context(), pytest.raises(core.OperationFailed, match="given for root@127.0.0.1"):
        core.removeHost(second["id"])
    assert _removals_with_password(provisioner) == []


def test_the_owners_own_removal_still_sends_it(app, provisioner):
    host = _host(app)
    with app.app_context():
        core.removeHost(host["id"])
    assert len(_removals_with_password(provisioner)) == 1


def test_a_user_changed_by_an_operator_keeps_the_password(app, provisioner):
    host = _host(app)
    with app.app_context():
        core.updateHost(host["id"], {"user": "admin2"})
        core.removeHost(host["id"])
    removal = _removals_with_password(provisioner)
    assert len(removal) == 1 and removal[0].host["user"] == "admin2"


def test_a_password_stored_before_sealing_is_sealed_at_first_use(app, provisioner):
    host = _host(app)
    box = app.extensions["nube"].secrets
    legacy = box.encrypt("sudo-pw")  # what an older Nube stored: the bare password
    _sql(app, "UPDATE hosts SET password_enc = ? WHERE id = ?", (legacy, host["id"]))
    with app.app_context():
        core.updateHost(host["id"], {"address": "127.0.0.1", "share": "bind"})  # re-prepares
        token = hosts_repo.secret(get_db(), host["id"])
    assert token != legacy
    assert box.unseal(token) == ("sudo-pw", {"address": "127.0.0.1", "user": "root"})
    adds = [r for r in provisioner.runs if r.playbook == "host_add.yaml"]
    assert len(adds) == 2 and adds[-1].had_password


def test_a_bare_password_whose_recorded_address_was_changed_is_refused(app, provisioner):
    host = _host(app)
    legacy = app.extensions["nube"].secrets.encrypt("sudo-pw")
    _sql(
        app,
        "UPDATE hosts SET password_enc = ?, address = '127.0.0.66' WHERE id = ?",
        (legacy, host["id"]),
    )
    with app.app_context(), pytest.raises(core.OperationFailed, match="sudo password is needed"):
        core.removeHost(host["id"])
    assert _removals_with_password(provisioner) == []


def test_a_password_sealed_with_another_key_is_not_read(app):
    host = _host(app)
    foreign = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    _sql(app, "UPDATE hosts SET password_enc = ? WHERE id = ?", (foreign, host["id"]))
    with app.app_context(), pytest.raises(core.OperationFailed, match="cannot be decrypted"):
        core.removeHost(host["id"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"state": "ready", "prepared": 0}, "unknown"),
        ({"address": "127.1"}, "address"),
        ({"share": "everything"}, "share"),
    ],
)
def test_a_stored_host_change_is_checked_again_at_use(app, provisioner, change, message):
    host = _host(app)
    with app.app_context():
        core.updateHost(host["id"], {"share": "bind"})  # a host.prepare operation, run
        conn = get_db()  # ... and written back as pending with another input
        op = conn.execute(
            "SELECT id FROM operations WHERE kind = 'host.prepare' ORDER BY id DESC"
        ).fetchone()
        conn.execute(
            "UPDATE operations SET input = ?, status = 'pending' WHERE id = ?",
            (json.dumps({"change": change, "prepare": True}), op["id"]),
        )
        hosts_repo.claim_task(conn, host["id"], "preparing", op["id"])
        row = execute(op["id"], app)
    assert row["status"] == "failed" and message in row["error"]
