"""A host's stored sudo password (issue 9, finding 2): it follows an address change only when
given again, never goes to another address, and is not asked for where nothing needs it."""

import pytest

from app import core
from app.db import get_db
from app.errors import InvalidInput
from app.repositories import hosts as hosts_repo
from tests.factories import gen_prepared_host as _host


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


def test_a_host_never_prepared_changes_share_without_a_password(app, host, provisioner):
    with app.app_context():
        updated = core.updateHost(host["id"], {"share": "bind"})
    assert (updated["share"], updated["state"]) == ("bind", "ready")
    assert "host_add.yaml" not in [run.playbook for run in provisioner.runs]
