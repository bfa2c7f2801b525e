"""The monitor runs in a thread of its own in every consumer: recovery and host polling go on
while every operation worker is busy, and the consumer's stop ends the thread."""

import signal
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from app.db import get_db, stamp
from app.ops.queue import queue_of
from app.ops.recovery import STALE_AFTER
from app.repositories import operations as ops_repo
from app.services import hosts
from app.services import monitor as monitor_service
from tests.factories import gen_operation
from tests.processes import Consumer, app_for, queue_env
from tests.wait import RecordingFlag, wait_for

WORKERS = 2


@pytest.fixture
def busy_env(tmp_path):
    """An app on huey's SQLite queue, and the env of a consumer whose playbooks sleep."""
    env = queue_env(tmp_path, MONITOR_INTERVAL=1)
    application = app_for(env)
    yield application, env
    application.extensions["nube"].hypervisor.close()


def _dead_pid():
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _orphan(conn):
    """A running operation whose worker, on another machine, stopped beating; its id."""
    op_id = gen_operation(
        conn, "vm.start", "vm:x", requested_by="t", worker=f"otherhost:{_dead_pid()}"
    )
    beat = stamp(datetime.now(UTC) - STALE_AFTER * 2)
    conn.execute("UPDATE operations SET heartbeat = ? WHERE id = ?", (beat, op_id))
    return op_id


def _stop(consumer):
    """SIGTERM (its workers sleep for minutes: a graceful stop would wait for them)."""
    consumer.process.send_signal(signal.SIGTERM)
    try:
        consumer.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        consumer.process.kill()
        consumer.process.wait()
        pytest.fail("the consumer did not stop within 20 s of SIGTERM")
    finally:
        consumer.stop()


@pytest.mark.slow  # a real huey consumer whose every worker sleeps in a playbook
def test_recovery_and_polling_go_on_while_every_worker_is_busy(busy_env, tmp_path):
    app, env = busy_env
    with app.app_context():  # as the system
        hosts.add(
            {"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h"}, "t", True
        )
        busy = [
            hosts.add({"address": f"127.0.0.{20 + n}", "user": "nube", "password": "pw"}, "t", False)
            for n in range(WORKERS)
        ]  # fmt: skip
    log = tmp_path / "consumer.log"
    consumer = Consumer(
        env, workers=WORKERS, periodic=True, log=log, entry="tests.fixtures.sleepy_worker.huey"
    )
    try:
        with app.app_context():
            conn = get_db()

            def statuses(ids):
                return [ops_repo.get(conn, op_id)["status"] for op_id in ids]

            wait_for(
                lambda: statuses(busy) == ["running"] * WORKERS,
                timeout=30,
                message=lambda: f"every worker to be busy ({statuses(busy)}): {log.read_text()}",
            )
            (before,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM host_samples").fetchone()
            orphan = _orphan(conn)

            def polled():
                row = conn.execute("SELECT COUNT(*) FROM host_samples WHERE id > ?", (before,))
                return row.fetchone()[0]

            # The busy operations sleep for 300 s: a monitor waiting for a worker would not
            # recover or poll until they end.
            wait_for(
                lambda: statuses([orphan]) == ["interrupted"] and polled(),
                timeout=60,
                message=lambda: f"recovery ({statuses([orphan])}) and a pass ({polled()})",
            )
            assert statuses(busy) == ["running"] * WORKERS  # still at work meanwhile
            host = conn.execute("SELECT state, last_seen FROM hosts WHERE name = 'h'").fetchone()
            assert host["state"] == "ready" and host["last_seen"]
    finally:
        _stop(consumer)


@pytest.fixture
def config_overrides():
    """A queue a consumer can run (not immediate), passes a second apart."""
    return {"QUEUE": "sqlite", "MONITOR_INTERVAL": 1}


def _consumer(app, monkeypatch, **options):
    """huey's consumer for the app's queue, in this process (pytest keeps its signals)."""
    consumer = queue_of(app).huey.create_consumer(workers=1, worker_type="thread", **options)
    monkeypatch.setattr(consumer, "_set_signal_handlers", lambda: None)
    return consumer


def test_the_consumers_stop_ends_its_monitor_and_frees_the_lease(app, monkeypatch):
    passes = []
    monkeypatch.setattr(monitor_service, "poll", lambda _app: passes.append(1))
    consumer = _consumer(app, monkeypatch, periodic=True)
    consumer.start()
    try:
        wait_for(lambda: passes, timeout=15, message="the monitor thread's first pass")
    finally:
        consumer.stop(graceful=True)
    assert not consumer.monitor.is_alive()
    lease = queue_of(app).lease
    assert lease.acquire() is not None  # given back: another consumer takes it at once


def test_a_consumer_without_periodic_tasks_runs_no_monitor(app, monkeypatch):
    consumer = _consumer(app, monkeypatch, periodic=False)
    assert consumer.monitor is None


def test_a_monitor_thread_that_dies_is_started_again(app, monkeypatch):
    consumer = _consumer(app, monkeypatch, periodic=True)
    dead = consumer.monitor  # never started: as good as dead
    consumer.check_worker_health()
    try:
        assert consumer.monitor is not dead and consumer.monitor.is_alive()
    finally:
        consumer.stop()
    assert not consumer.monitor.is_alive()


def test_a_turn_that_fails_waits_an_interval_and_goes_on(app, monkeypatch):
    loop = queue_of(app).make_monitor(RecordingFlag())
    calls = []

    def broken(_app):
        calls.append(1)
        raise RuntimeError("database away")

    monkeypatch.setattr("app.ops.monitor_loop.recover", broken)
    loop.loop()
    loop.loop()
    assert len(calls) == 2 and loop.stop_flag.waits == [loop.interval] * 2


def test_idle_workers_look_for_new_work_at_least_four_times_a_second(app):
    huey = queue_of(app).huey
    for given in ({}, {"max_delay": 10.0, "initial_delay": 0.1}, {"max_delay": 0.1}):
        consumer = huey.create_consumer(workers=1, worker_type="thread", periodic=False, **given)
        assert consumer.max_delay == min(given.get("max_delay", 0.25), 0.25)
        assert consumer.default_delay <= consumer.max_delay
