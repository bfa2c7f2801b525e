"""Edge cases a review found: each pins down what must hold when things go sideways."""

import io
import logging
import threading

import pytest

from app import core
from app.db import get_db
from app.errors import OperationCanceled
from app.ops.context import OperationContext
from app.ops.kinds import KINDS
from app.ops.queue import queue_of
from app.repositories import operations as ops_repo
from app.services import monitor, vms
from app.services.monitor import HostReading
from tests.conftest import csrf_token
from tests.factories import gen_host


def row(app, sql, *params):
    """One row of a query, as a dict."""
    with app.app_context():
        found = get_db().execute(sql, params).fetchone()
        return dict(found) if found else None


def test_anonymous_uploads_never_reach_the_repository(app, monkeypatch):
    images = app.extensions["nube"].storage.images_dir

    def not_for_anonymous():
        raise AssertionError("an anonymous request streamed into the repository")

    monkeypatch.setattr(app.extensions["nube"].storage, "upload_target", not_for_anonymous)
    client = app.test_client()
    response = client.post(
        "/login",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"x" * 4096), "big.qcow2")},
    )
    assert response.status_code in (400, 413)
    assert list(images.iterdir()) == []
    big = client.post(
        "/hosts/new",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"x" * (2 * 1024 * 1024)), "big.qcow2")},
    )
    assert big.status_code == 413  # only the upload form takes a large body


def test_a_failed_create_never_removes_a_domain_it_did_not_make(app, host, image):
    hypervisor = app.extensions["nube"].hypervisor
    with app.app_context():
        host_row = dict(get_db().execute("SELECT * FROM hosts").fetchone())
        hypervisor.define(
            host_row,
            "<domain type='test'><name>foreign</name>"
            "<memory>65536</memory><os><type>hvm</type></os></domain>",
        )
        with pytest.raises(core.OperationFailed, match="already has a domain named foreign"):
            core.addVm({"id": "foreign", "image": image, "mem": 64})
        assert hypervisor.domain_state(host_row, "foreign") == "stopped"  # still there
        assert core.listVms() == []
        hypervisor.undefine(host_row, "foreign")


def test_destroy_releases_a_host_whose_removal_crashed(app, host, image, monkeypatch):
    provisioner = app.extensions["nube"].provisioner

    def broken(address):
        raise OSError("known_hosts is read-only")

    monkeypatch.setattr(provisioner, "forget_host_key", broken)
    with app.app_context():
        core.addVm({"id": "d1", "image": image, "mem": 64})
        with pytest.raises(core.OperationFailed, match="could not be removed"):
            core.destroy()
        [kept] = core.listHosts()
        assert kept["state"] == "error"
    assert row(app, "SELECT COUNT(*) AS n FROM hosts WHERE task IS NOT NULL")["n"] == 0
    assert row(app, "SELECT COUNT(*) AS n FROM vms WHERE task IS NOT NULL")["n"] == 0


def test_recovery_leaves_a_worker_that_beat_again(app):
    with app.app_context():
        conn = get_db()
        op_id = ops_repo.insert(
            conn,
            kind="vm.start",
            target_type="vm",
            target_id="x",
            target_name="x",
            requested_by="t",
            input_data={},
        )
        ops_repo.claim(conn, op_id, "elsewhere:1")
        seen = ops_repo.get(conn, op_id)["heartbeat"]
        ops_repo.beat(conn, op_id)  # the worker was only slow
        assert not ops_repo.interrupt(conn, op_id, seen, "gone")
        assert ops_repo.get(conn, op_id)["status"] == "running"


def test_other_threads_logging_stays_out_of_an_operations_log(app, host, image, monkeypatch):
    hypervisor = app.extensions["nube"].hypervisor
    real_start = hypervisor.start

    def start_while_another_thread_logs(host_row, name):
        other = threading.Thread(
            target=logging.getLogger("app.elsewhere").warning, args=("a line from another thread",)
        )
        other.start()
        other.join(10)
        logging.getLogger("app.vm").warning("a line from the operation's own thread")
        return real_start(host_row, name)

    monkeypatch.setattr(hypervisor, "start", start_while_another_thread_logs)
    with app.app_context():
        core.addVm({"id": "l1", "image": image, "mem": 64})
        core.startVm("l1")
        messages = [
            r[0]
            for r in get_db().execute(
                "SELECT message FROM operation_log l JOIN operations o ON o.id = l.operation_id"
                " WHERE o.kind = 'vm.start'"
            )
        ]
    assert "a line from the operation's own thread" in messages
    assert "a line from another thread" not in messages


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


def test_an_address_in_use_is_refused_and_changes_nothing(app):
    with app.app_context():
        gen_host(app, name="a")
        other = gen_host(app, address="127.0.0.2", name="b")
        with pytest.raises(core.InvalidInput, match="already has address 127.0.0.1"):
            core.updateHost(other["id"], {"address": "127.0.0.1"})
        after = [h for h in core.listHosts() if h["name"] == "b"][0]
    assert (after["address"], after["state"]) == ("127.0.0.2", "ready")


def test_a_host_never_prepared_changes_share_without_a_password(app, host, provisioner):
    with app.app_context():
        updated = core.updateHost(host["id"], {"share": "bind"})
    assert (updated["share"], updated["state"]) == ("bind", "ready")
    assert "host_add.yaml" not in [run.playbook for run in provisioner.runs]


def test_a_queue_that_is_down_fails_the_operation_and_frees_the_vm(app, host, image, monkeypatch):
    def queue_down(op_id):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(queue_of(app), "enqueue", queue_down)
    with (
        app.app_context(),  # as the system: no request, no viewer to refuse
        pytest.raises(core.OperationFailed, match="could not be queued"),
    ):
        vms.add({"id": "q1", "image": image, "mem": 64}, "admin", wait=False)
    op = row(app, "SELECT status, error FROM operations WHERE kind = 'vm.create'")
    assert op["status"] == "failed" and "redis is down" in op["error"]
    with app.app_context():
        assert core.listVms() == []  # the reserved row is gone again


def test_monitor_keeps_a_state_recorded_after_its_reading_began(app, host, image):
    with app.app_context():
        core.addVm({"id": "m1", "image": image, "mem": 64})
        core.startVm("m1")  # recorded now, after the stale reading below began
        conn = get_db()
        host_row = dict(conn.execute("SELECT * FROM hosts").fetchone())
        vm_rows = conn.execute("SELECT id, task, last_seen FROM vms").fetchall()
        monitor._apply_domains(conn, host_row["id"], vm_rows, {}, "2000-01-01T00:00:00Z")
        assert core.listVms()[0]["state"] == "running"
        assert HostReading(host_row).started == ""


def test_a_worker_whose_operation_was_interrupted_elsewhere_stops(app, host):
    """Fencing: another controller's recovery interrupted the row; the next beat says so and
    the worker stops at its next check, leaving the undo to the controller that interrupted."""
    with app.app_context():
        conn = get_db()
        op_id = ops_repo.insert(
            conn, kind="host.add", target_type="host", target_id="1", target_name="h1",
            requested_by="t", input_data={},
        )  # fmt: skip
        assert ops_repo.claim(conn, op_id, "elsewhere:1")
        assert ops_repo.beat(conn, op_id)
        row = ops_repo.get(conn, op_id)
        assert ops_repo.interrupt(conn, op_id, row["heartbeat"], "judged stale")
        assert not ops_repo.beat(conn, op_id)
        ctx = OperationContext(app, conn, row, KINDS["host.add"].time_limit)
        ctx.fenced = threading.Event()
        ctx.check()  # not fenced yet
        ctx.fenced.set()
        assert ctx.should_stop()
        with pytest.raises(OperationCanceled, match="another controller's recovery"):
            ctx.check()
