"""Recover actions on failed operations: retry, and re-check the target's real state."""

import pytest

from app import core
from app.db import get_db
from app.services import retry
from tests.conftest import csrf_token, row


def newest_operation(app, kind):
    """The newest operation row of a kind."""
    with app.app_context():
        return dict(
            get_db()
            .execute("SELECT * FROM operations WHERE kind = ? ORDER BY id DESC", (kind,))
            .fetchone()
        )


def test_retry_a_failed_start_through_the_page(app, host, image, admin_client, monkeypatch):
    hypervisor = app.extensions["nube"].hypervisor
    with app.app_context():
        core.addVm({"id": "r1", "image": image, "mem": 64})
        real_start = hypervisor.start
        monkeypatch.setattr(
            hypervisor,
            "start",
            lambda h, n: (_ for _ in ()).throw(core.HostUnreachable("host h1 did not answer")),
        )
        with pytest.raises(core.OperationFailed):
            core.startVm("r1")
    failed = newest_operation(app, "vm.start")
    page = admin_client.get(f"/operations/{failed['id']}").get_data(as_text=True)
    assert "Retry" in page and "Re-check target" in page
    monkeypatch.setattr(hypervisor, "start", real_start)  # the host is back
    token = csrf_token(admin_client, f"/operations/{failed['id']}")
    response = admin_client.post(f"/operations/{failed['id']}/retry", data={"csrf_token": token})
    retried = newest_operation(app, "vm.start")
    assert retried["id"] != failed["id"] and retried["status"] == "succeeded"
    assert response.location.endswith(f"/operations/{retried['id']}")
    with app.app_context():
        assert core.listVms()[0]["state"] == "running"


def test_recheck_records_what_the_hypervisor_says(app, host, image, admin_client):
    with app.app_context():
        core.addVm({"id": "c1", "image": image, "mem": 64})
        core.startVm("c1")
        row = dict(get_db().execute("SELECT * FROM hosts").fetchone())
        app.extensions["nube"].hypervisor.force_off(row, "c1")  # stopped behind Nube's back
        get_db().execute("UPDATE operations SET status = 'failed' WHERE kind = 'vm.start'")
    failed = newest_operation(app, "vm.start")
    token = csrf_token(admin_client, f"/operations/{failed['id']}")
    admin_client.post(f"/operations/{failed['id']}/recheck", data={"csrf_token": token})
    assert newest_operation(app, "vm.recheck")["status"] == "succeeded"
    with app.app_context():
        assert core.listVms()[0]["state"] == "stopped"
        assert core.listVms()[0]["task"] is None


def test_recheck_brings_an_unreachable_host_back(app, host):
    with app.app_context():
        get_db().execute("UPDATE hosts SET state = 'unreachable'")
        op_id = (
            get_db()
            .execute(
                "INSERT INTO operations (kind, target_type, target_id, target_name, status,"
                " created_at) VALUES ('host.remove', 'host', ?, 'h1', 'failed', 'x') RETURNING id",
                (str(host["id"]),),
            )
            .fetchone()[0]
        )
        new_id = retry.recheck(op_id, "admin")
        assert newest_operation(app, "host.recheck")["id"] == new_id
        assert core.listHosts()[0]["state"] == "ready"


def test_retry_a_failed_create(app, host, image, monkeypatch):
    hypervisor = app.extensions["nube"].hypervisor
    real_define = hypervisor.define
    monkeypatch.setattr(
        hypervisor,
        "define",
        lambda h, x: (_ for _ in ()).throw(core.HostUnreachable("host h1 did not answer")),
    )
    with app.app_context():
        with pytest.raises(core.OperationFailed):
            core.addVm({"id": "n1", "image": image, "mem": 64, "vcpus": 2})
        failed = newest_operation(app, "vm.create")
        assert retry.actions(failed) == ("retry",)  # the half-made VM is gone: no re-check
        monkeypatch.setattr(hypervisor, "define", real_define)
        retry.retry(failed["id"], "admin")
        [vm] = core.listVms()
        assert (vm["id"], vm["vcpus"], vm["host_name"]) == ("n1", 2, "h1")


def test_nothing_to_retry_on_a_success(app, host, admin_client):
    done = newest_operation(app, "host.add")
    assert done["status"] == "succeeded"
    token = csrf_token(admin_client, f"/operations/{done['id']}")
    admin_client.post(f"/operations/{done['id']}/retry", data={"csrf_token": token})
    page = admin_client.get(f"/operations/{done['id']}").get_data(as_text=True)
    assert "cannot be retried" in page


def test_retry_a_failed_stop(app, host, image, admin_client, monkeypatch):
    hypervisor = app.extensions["nube"].hypervisor
    with app.app_context():
        core.addVm({"id": "s1", "image": image, "mem": 64})
        core.startVm("s1")
        real = hypervisor.force_off
        monkeypatch.setattr(
            hypervisor,
            "force_off",
            lambda h, n: (_ for _ in ()).throw(core.HostUnreachable("no answer")),
        )
        with pytest.raises(core.OperationFailed):
            core.stopVm("s1", force=True)
        monkeypatch.setattr(hypervisor, "force_off", real)
    failed = row(app, "SELECT id FROM operations WHERE kind = 'vm.stop' ORDER BY id DESC")["id"]
    token = csrf_token(admin_client, f"/operations/{failed}")
    response = admin_client.post(f"/operations/{failed}/retry", data={"csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        assert core.listVms()[0]["state"] == "stopped"
