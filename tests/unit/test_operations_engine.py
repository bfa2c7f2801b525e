"""The operations engine: one task per target, cancel, crash recovery, real ansible-runner."""

import logging
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from app import core
from app.adapters.ansible import AnsibleProvisioner, count_tasks
from app.db import connect, get_db
from app.errors import OperationCanceled
from app.ops.context import OperationContext
from app.ops.kinds import KINDS
from app.ops.queue import queue_of
from app.ops.recovery import recover
from app.repositories import operations as ops_repo
from app.services import operations, vms
from tests.conftest import row
from tests.factories import gen_operation
from tests.fixtures.provisioners import BlockingProvisioner
from tests.wait import join_all, wait_for

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_PLAYS = ROOT / "tests" / "fixtures" / "plays"


def op_rows(app):
    """Every operation row."""
    conn = connect(app.config["DATABASE"])
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM operations ORDER BY id")]
    finally:
        conn.close()


def test_two_operations_on_one_vm_never_overlap(app, host, image, monkeypatch):
    with app.app_context():
        core.addVm({"id": "solo", "image": image, "mem": 64})
    hypervisor = app.extensions["nube"].hypervisor
    in_flight, peak, lock = [0], [0], threading.Lock()
    real_start, real_force_off = hypervisor.start, hypervisor.force_off

    def tracked(real):
        def call(host, name):
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.02)  # widen the window in which an overlap would show
            try:
                return real(host, name)
            finally:
                with lock:
                    in_flight[0] -= 1

        return call

    monkeypatch.setattr(hypervisor, "start", tracked(real_start))
    monkeypatch.setattr(hypervisor, "force_off", tracked(real_force_off))
    outcomes = []

    def click(action):
        with app.app_context():
            try:
                action("solo")
                outcomes.append("done")
            except (core.Busy, core.InvalidInput) as error:
                outcomes.append(type(error).__name__)

    force_off = lambda vm: core.stopVm(vm, force=True)  # noqa: E731
    threads = [
        threading.Thread(target=click, args=(core.startVm if n % 2 else force_off,))
        for n in range(16)
    ]
    for thread in threads:
        thread.start()
    join_all(threads, timeout=30, message="the concurrent clicks")
    assert peak[0] == 1
    assert "done" in outcomes and len(outcomes) == 16
    with app.app_context():
        [vm] = core.listVms()
    assert vm["task"] is None


def test_cancel_ends_a_running_operation(app):
    provisioner = BlockingProvisioner()
    app.extensions["nube"].provisioner = provisioner
    errors = []

    def add():
        with app.app_context():
            try:
                core.addHost({"address": "127.0.0.5", "user": "nube", "password": "pw"})
            except core.OperationFailed as error:
                errors.append(error)

    worker = threading.Thread(target=add)
    worker.start()
    assert provisioner.entered.wait(10)
    [row] = op_rows(app)
    assert row["status"] == "running"
    with app.app_context():
        operations.cancel(row["id"], "admin")
    join_all([worker], timeout=10, message="the canceled host add")
    [row] = op_rows(app)
    assert row["status"] == "canceled"
    assert errors and "canceled" in str(errors[0])
    with app.app_context():
        assert core.listHosts() == []  # a canceled add leaves no host


@pytest.mark.slow  # a second Python process running the app
def test_killed_worker_leaves_an_interrupted_row_and_no_stuck_task(app, tmp_path):
    """A separate process runs an operation; it is killed mid-way; start-up recovery cleans up."""
    script = textwrap.dedent(f"""
        from app import create_app, core
        from tests.fixtures.provisioners import SleepingProvisioner
        app = create_app({{
            "INSTANCE_PATH": {str(tmp_path / "instance")!r},
            "DATABASE": {app.config["DATABASE"]!r},
            "REPOSITORY": {app.config["REPOSITORY"]!r},
            "LIBVIRT_URI": "test:///default", "QUEUE": "immediate",
            "PROVISIONER": SleepingProvisioner(), "SECRET_KEY": "x",
        }})
        with app.app_context():
            core.addHost({{"address": "127.0.0.7", "user": "nube", "password": "pw"}})
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        wait_for(
            lambda: [r["status"] for r in op_rows(app)] == ["running"],
            timeout=30,
            message="the worker process's operation row to be running",
        )
        running = op_rows(app)[0]
        assert running["worker"].endswith(f":{worker.pid}")
        # a live worker's row is never interrupted
        assert recover(app) == 0
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)  # SIGKILL cannot be ignored: a timeout here would raise
    assert recover(app) == 1
    [row] = op_rows(app)
    assert row["status"] == "interrupted" and row["finished_at"]
    with app.app_context():
        assert core.listHosts() == []  # the half-added host was cleaned up
        assert (
            get_db().execute("SELECT COUNT(*) FROM hosts WHERE task IS NOT NULL").fetchone()[0] == 0
        )


def test_pending_operation_canceled_before_it_starts(app, host, image):
    with app.app_context():
        core.addVm({"id": "p1", "image": image, "mem": 64})
        conn = get_db()
        from app.ops.runner import execute
        from app.repositories import operations as ops_repo
        from app.repositories import vms as vms_repo

        op_id = ops_repo.insert(
            conn,
            kind="vm.start",
            target_type="vm",
            target_id="p1",
            target_name="p1",
            requested_by="t",
            input_data={},
        )
        assert vms_repo.claim_task(conn, "p1", "starting", op_id)
        operations.cancel(op_id, "t")
        row = execute(op_id, app)
        assert row["status"] == "canceled"
        assert execute(op_id, app)["status"] == "canceled"  # a second delivery runs nothing
        assert core.listVms()[0]["state"] == "stopped" and core.listVms()[0]["task"] is None


@pytest.mark.slow  # real ansible-runner playbooks
def test_real_ansible_runner_reports_facts_and_progress(tmp_path):
    provisioner = AnsibleProvisioner(
        FIXTURE_PLAYS, tmp_path / "runner", tmp_path / "key", tmp_path / "known_hosts", keep=2
    )
    lines, progress = [], []
    facts = provisioner.run(
        "facts.yaml",
        log=lambda m, level="info": lines.append(m),
        progress=lambda done, total: progress.append((done, total)),
    )
    assert facts == {"cpus": 3, "mem": 2048, "kvm": False}
    assert progress[-1] == (1, 1) == (count_tasks(FIXTURE_PLAYS / "facts.yaml"), 1)
    assert any("ok: [controller] Report facts to Nube" in line for line in lines)
    for _ in range(3):
        provisioner.run("facts.yaml")
    assert len(list((tmp_path / "runner").iterdir())) == 2  # old artifacts rotated
    # no password file in the private data dir's env/; variables only as !unsafe data
    for folder in (tmp_path / "runner").iterdir():
        assert not (folder / "env" / "passwords").exists()
        assert (folder / "env" / "extravars").read_text().strip() == "{}"


@pytest.mark.slow  # a real ansible-runner playbook
def test_real_ansible_runner_cancel_ends_the_playbook(tmp_path):
    provisioner = AnsibleProvisioner(
        FIXTURE_PLAYS, tmp_path / "runner", tmp_path / "key", tmp_path / "known_hosts"
    )
    lines = []
    cancel = threading.Event()

    def log(message, level="info"):
        lines.append(message)
        if "hello" in message or "Say hello" in message:
            cancel.set()

    nap = f"120.{secrets.randbelow(10**6):06d}"  # names this run's task among any others
    with pytest.raises(core.NubeError, match="canceled"):
        provisioner.run("slow.yaml", log=log, cancel=cancel.is_set, extravars={"nap": nap})
    assert any("Say hello" in line for line in lines)

    # nothing of the run is left running: no ansible worker, no `sleep 120` task
    def leftovers():
        found = subprocess.run(
            ["pgrep", "-f", f"{tmp_path}|sleep {nap}"], capture_output=True, text=True
        )
        return found.stdout.split()

    # killed: gone once the kernel has ended them (a moment, on a loaded machine)
    wait_for(lambda: leftovers() == [], timeout=10, interval=0.1, message=leftovers)
    assert not any("Wait a long time" in line and line.startswith("ok") for line in lines)


@pytest.mark.parametrize(
    ("kind", "message", "expected"),
    [
        (
            "runner_on_unreachable",
            "Invalid/incorrect password: Permission denied, please try again.",
            "host_add.yaml: 127.0.0.2 refused the sudo user's password: Invalid/incorrect",
        ),
        (
            "runner_on_failed",
            "Incorrect sudo password",
            "host_add.yaml: 127.0.0.2 refused the sudo user's password: Incorrect sudo password",
        ),
        (
            "runner_on_unreachable",
            "Failed to connect to the host via ssh: Connection refused",
            "host_add.yaml: host 127.0.0.2 unreachable: Failed to connect",
        ),
    ],
)
def test_a_refused_password_is_named_as_such_not_as_unreachable(kind, message, expected):
    from app.adapters.ansible import _EventLog, _failure_message

    events = _EventLog(None, None, 1)
    events(
        {
            "event": kind,
            "event_data": {"host": "127.0.0.2", "task": "Gather facts", "res": {"msg": message}},
        }
    )
    failed = SimpleNamespace(status="failed", rc=4)
    assert _failure_message("host_add.yaml", failed, events).startswith(expected)


def test_recovery_leaves_a_worker_that_beat_again(app):
    with app.app_context():
        conn = get_db()
        op_id = gen_operation(conn, "vm.start", "vm:x", requested_by="t", worker="elsewhere:1")
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
