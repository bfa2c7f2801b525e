"""QUEUE=redis://: real huey consumers on a real redis-server, the monitor's lease on every
queue storage, and recovery judging another machine's worker by its heartbeat."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from app.db import connect, get_db, stamp
from app.ops import monitor_loop
from app.ops.lease import RedisLease, SqliteLease, make_lease
from app.ops.queue import make_huey, queue_of
from app.ops.recovery import STALE_AFTER, recover
from app.ops.runner import machine_id
from app.repositories import operations as ops_repo
from app.services import hosts, vms
from app.services import monitor as monitor_service
from tests.conftest import make_image
from tests.factories import gen_operation
from tests.processes import Consumer, app_for
from tests.unit import test_queue_consumer as sqlite_queue
from tests.wait import RecordingFlag, wait_for

pytest_plugins = ["tests.redis_server"]  # its fixtures: redis_server, redis_url

INTERVAL = 1.0  # MONITOR_INTERVAL for the consumers here: passes a second apart
LEASE_KEY = "nube.lease.monitor"

# The SQLite queue's real-consumer test, collected here again with this module's queued_app.
test_enqueued_operations_run_once_each = pytest.mark.slow(
    sqlite_queue.test_enqueued_operations_run_once_each
)


@pytest.fixture
def queued_app(tmp_path, redis_url, database):
    """An app whose operations go through huey's Redis queue, and the env for its consumers."""
    repository = tmp_path / "iaas"
    (repository / "vms").mkdir(parents=True)
    (repository / "images").mkdir()
    make_image(repository / "images" / "base.raw")
    env = {
        **os.environ,
        "NUBE_INSTANCE_PATH": str(tmp_path / "instance"),
        "NUBE_DATABASE": database,  # SQLite, or PostgreSQL under NUBE_TEST_DATABASE=postgresql
        "NUBE_REPOSITORY": str(repository),
        "NUBE_LIBVIRT_URI": "test:///default",
        "NUBE_PROVISIONER": "recording",
        "NUBE_QUEUE": redis_url,
        "NUBE_MONITOR_INTERVAL": str(INTERVAL),
        "NUBE_SECRET_KEY": "x",
    }
    application = app_for(env)
    yield application, env
    application.extensions["nube"].hypervisor.close()


def _redis(app):
    """The Redis client of the app's queue."""
    return queue_of(app).huey.storage.conn


def _add_host(app, address="127.0.0.1", name="h"):
    """A ready host on libvirt's test driver, added in this process."""
    with app.app_context():  # as the system
        hosts.add({"address": address, "user": "root", "prepare": False, "name": name}, "t", True)


def _lease_pid(app):
    """The pid of the consumer holding the monitor's lease, or None."""
    holder = _redis(app).get(LEASE_KEY)
    return int(holder.decode().split(":")[1]) if holder else None


def _halt(consumer):
    """Stop a consumer gracefully (SIGINT): its monitor thread ends and gives the lease back."""
    sqlite_queue.stop_consumer(consumer)


def _halt_all(consumers):
    """Stop every consumer, even when one of them had to be killed (then fail)."""
    try:
        _halt(consumers[0])
    finally:
        if consumers[1:]:
            _halt_all(consumers[1:])


@pytest.mark.slow  # two real huey consumers
def test_two_consumers_claim_each_operation_once(queued_app):
    app, env = queued_app
    _add_host(app)
    consumers = [Consumer(env, workers=2) for _ in range(2)]
    try:
        with app.app_context():  # as the system
            ids = [
                vms.add({"id": f"r{n}", "image": "base.raw", "mem": 16}, "t", wait=False)
                for n in range(16)
            ]
            for op_id in ids:
                queue_of(app).enqueue(op_id)  # every operation delivered twice
        with app.app_context():
            conn = get_db()

            def statuses():
                return [r[0] for r in conn.execute("SELECT status FROM operations ORDER BY id")]

            wait_for(
                lambda: statuses()[1:] == ["succeeded"] * 16,
                timeout=60,
                interval=0.1,
                message=lambda: f"16 vm.create operations to succeed (now {statuses()})",
            )
            wait_for(
                lambda: queue_of(app).huey.pending_count() == 0,
                timeout=30,
                message="both consumers to take every delivery",
            )
            starts = conn.execute(
                "SELECT COUNT(*) FROM operation_log WHERE message LIKE ?",
                ("create VM started by%",),
            ).fetchone()[0]
            assert starts == 16  # 32 deliveries, each operation claimed once
            pids = {consumer.process.pid for consumer in consumers}
            workers = {r[0] for r in conn.execute("SELECT worker FROM operations WHERE id > 1")}
            assert {int(w.split(":")[1]) for w in workers} <= pids
    finally:
        _halt_all(consumers)


@pytest.mark.slow  # two real huey consumers running the periodic monitor
def test_the_monitor_passes_once_per_interval_across_two_consumers(queued_app, tmp_path):
    app, env = queued_app
    _add_host(app)
    with app.app_context():
        conn = get_db()

        def samples():
            return [r[0] for r in conn.execute("SELECT ts FROM host_samples ORDER BY id")]

        logs = [tmp_path / f"consumer{n}.log" for n in range(2)]
        consumers = [Consumer(env, workers=2, periodic=True, log=log) for log in logs]
        try:
            wait_for(
                lambda: samples(),
                timeout=30,
                message=lambda: (
                    "the monitor's first pass; the consumers said: "
                    + " | ".join(log.read_text()[-1000:] for log in logs)
                ),
            )
            first = len(samples())
            window = 5.0
            time.sleep(window)
            stamps = [datetime.fromisoformat(s) for s in samples()[first - 1 :]]
            holder = _lease_pid(app)
        finally:
            _halt_all(consumers)
    passes = len(stamps) - 1
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    # both consumers enqueue the monitor; one holds the lease, so passes stay INTERVAL apart
    assert window / INTERVAL - 2 <= passes <= window / INTERVAL + 1, gaps
    assert min(gaps) >= INTERVAL * 0.9, gaps
    assert holder in {consumer.process.pid for consumer in consumers}


@pytest.mark.slow  # a real consumer killed mid-operation, another one recovering it
def test_a_consumer_killed_mid_operation_is_recovered_by_the_others_monitor(queued_app):
    app, env = queued_app
    with app.app_context():
        get_db()  # the schema, before the consumers open the database
    # The sleepy consumer starts alone, so that it is the one to take the operation.
    sleepy = Consumer(env, workers=1, entry="tests.fixtures.sleepy_worker.huey")
    monitor = None
    try:
        with app.app_context():  # as the system
            op_id = hosts.add(
                {"address": "127.0.0.9", "user": "nube", "password": "pw"}, "t", False
            )
        with app.app_context():
            conn = get_db()

            def row():
                return ops_repo.get(conn, op_id)

            wait_for(
                lambda: row()["status"] == "running",
                timeout=30,
                message="the sleepy consumer to start the host add",
            )
            assert row()["worker"].endswith(f":{sleepy.process.pid}")
            monitor = Consumer(env, workers=1, periodic=True)
            wait_for(
                lambda: _lease_pid(app) == monitor.process.pid,
                timeout=30,
                message="the other consumer to hold the monitor's lease",
            )
            os.kill(sleepy.process.pid, signal.SIGKILL)
            sleepy.process.wait(10)
            killed = time.monotonic()
            wait_for(
                lambda: row()["status"] == "interrupted",
                timeout=15,
                message=lambda: f"the other consumer's monitor to recover it ({dict(row())})",
            )
            recovered_in = time.monotonic() - killed
            assert recovered_in < 10 * INTERVAL, recovered_in
            log = [line["message"] for line in ops_repo.log_lines(conn, op_id)]
            assert any("is gone: interrupted" in line for line in log), log
            # The status turns first (guarded by the heartbeat read), the undo follows it.
            wait_for(
                lambda: conn.execute("SELECT COUNT(*) FROM hosts").fetchone()[0] == 0,
                timeout=15,
                message="the recovering monitor to undo the host add",
            )
    finally:
        if monitor is not None:
            _halt(monitor)
        sleepy.stop()


def _dead_pid():
    """The pid of a process of this machine that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture(params=["redis", "sqlite", "immediate"])
def lease_of(request, tmp_path):
    """Make a monitor lease with a ttl, on each queue storage."""
    queue = request.getfixturevalue("redis_url") if request.param == "redis" else request.param
    huey = make_huey(queue, tmp_path, secret="test-queue-secret")
    return lambda ttl: make_lease(huey, "t", ttl)


def test_a_live_holder_keeps_the_lease_until_it_gives_it_back(lease_of):
    lease = lease_of(30)
    token = lease.acquire()
    assert token and token.startswith(f"{machine_id()}:{os.getpid()}:")
    assert lease.acquire() is None  # this process is alive: the lease stays its own
    assert lease.renew(token)
    assert not lease.renew("elsewhere:1:x")
    lease.release(token)
    assert lease.acquire() not in (None, token)


def test_a_dead_holder_of_this_machine_loses_the_lease_at_once(lease_of):
    lease = lease_of(30)
    dead = f"{machine_id()}:{_dead_pid()}:x"
    assert lease._take(dead, "")
    assert lease.acquire()
    assert not lease.renew(dead)  # a holder that comes back finds it gone, and stops


def test_another_machines_holder_keeps_the_lease_until_it_expires(lease_of):
    lease = lease_of(0.5)
    assert lease._take("otherhost:1:x", "")
    assert lease.acquire() is None  # its pid means nothing here: only the expiry counts
    time.sleep(0.7)
    assert lease.acquire()


@pytest.mark.parametrize("lease_of", ["redis", "sqlite"], indirect=True)  # shared storages
def test_every_consumer_sees_the_last_pass(lease_of):
    mine, theirs = lease_of(30), lease_of(30)
    assert theirs.last_pass() == 0
    mine.mark_pass(1234.5)
    assert theirs.last_pass() == 1234.5


@pytest.fixture
def counted(app, monkeypatch):
    """Monitor passes and recoveries, counted instead of made; MONITOR_INTERVAL 1 s."""
    monkeypatch.setitem(app.config, "MONITOR_INTERVAL", 1.0)
    calls = {"poll": 0, "recover": 0}

    def count(name):
        return lambda _app: calls.__setitem__(name, calls[name] + 1)

    monkeypatch.setattr(monitor_service, "poll", count("poll"))
    monkeypatch.setattr(monitor_loop, "recover", count("recover"))
    return calls


def test_a_second_monitor_leaves_the_passes_to_the_lease_holder(app, counted):
    queue = queue_of(app)
    mine, theirs = queue.make_monitor(RecordingFlag()), queue.make_monitor(RecordingFlag())
    assert mine.turn() == mine.interval and counted == {"poll": 1, "recover": 1}
    assert theirs.turn() == theirs.interval  # the lease is held: it waits and tries again
    assert counted == {"poll": 1, "recover": 1}
    mine.shutdown()
    wait = theirs.turn()  # it takes over, and goes on from the last pass
    assert counted == {"poll": 1, "recover": 2} and 0 < wait <= theirs.interval


def test_a_long_interval_polls_once_and_recovers_every_turn(app, counted, monkeypatch):
    monkeypatch.setitem(app.config, "MONITOR_INTERVAL", 600.0)
    loop = queue_of(app).make_monitor(RecordingFlag())
    waits = [loop.turn() for _ in range(3)]
    assert counted == {"poll": 1, "recover": 3}
    assert all(0 < wait <= 600.0 for wait in waits)  # never past the lease's renewal


def _write_last_pass(lease, value):
    """Store a raw last-pass value as whoever writes the queue's storage could."""
    if isinstance(lease, RedisLease):
        lease.conn.set(lease.pass_key, value)
    elif isinstance(lease, SqliteLease):
        lease.mark_pass(0)
        lease._execute("UPDATE nube_lease SET last_pass = ? WHERE name = ?", (value, lease.name))
    else:
        lease.mark_pass(value)


FORGED = [
    "nan",
    "inf",
    "-inf",
    "garbage",
    b"\xff\xfe",
    pytest.param(str(time.time() + 3600), id="an-hour-ahead"),  # an id every worker agrees on
    "1e400",
]


@pytest.mark.parametrize("lease_of", ["redis", "sqlite"], indirect=True)
@pytest.mark.parametrize("forged", FORGED)
def test_a_forged_last_pass_neither_spins_nor_stops_the_monitor(app, counted, lease_of, forged):
    lease = lease_of(30)
    flag = RecordingFlag()
    loop = monitor_loop.MonitorLoop(app, lease, flag)
    _write_last_pass(lease, forged)
    assert lease.last_pass() == 0.0  # no valid pass: the next one is due now
    for _ in range(5):
        loop.loop()
    # one pass at once, then a turn per interval: waits close to the interval, never zero
    assert counted == {"poll": 1, "recover": 5}, flag.waits
    assert all(wait > loop.interval / 2 for wait in flag.waits), flag.waits
    assert 0 < lease.last_pass() <= time.time()  # the pass put a real time back


@pytest.mark.parametrize("lease_of", ["redis", "sqlite"], indirect=True)
def test_a_valid_last_pass_is_kept(lease_of):
    lease = lease_of(30)
    moment = time.time() - 5
    _write_last_pass(lease, repr(moment))
    assert lease.last_pass() == pytest.approx(moment)


def test_a_holder_that_is_not_text_blocks_only_until_it_expires(redis_url, tmp_path):
    huey = make_huey(redis_url, tmp_path, secret="test-queue-secret")
    lease = make_lease(huey, "t", 30)
    lease.conn.set(lease.key, b"\xff\xfe:1", px=300)
    assert lease.acquire() is None  # held, by something that is not a token
    wait_for(lambda: lease.acquire(), timeout=10, message="the odd lease to expire")


def _running_elsewhere(app, heartbeat_age):
    """An operation running on another machine's worker, its heartbeat that old; its id."""
    conn = connect(app.config["DATABASE"])
    try:
        op_id = gen_operation(
            conn, "vm.start", "vm:x", requested_by="t", worker=f"otherhost:{_dead_pid()}"
        )
        beat = stamp(datetime.now(UTC) - heartbeat_age)
        conn.execute("UPDATE operations SET heartbeat = ? WHERE id = ?", (beat, op_id))
        return op_id
    finally:
        conn.close()


def test_recovery_judges_another_machines_worker_by_its_heartbeat(app):
    fresh = _running_elsewhere(app, timedelta(seconds=1))
    stale = _running_elsewhere(app, STALE_AFTER + timedelta(seconds=5))
    assert recover(app) == 1
    with app.app_context():
        conn = get_db()
        assert ops_repo.get(conn, stale)["status"] == "interrupted"
        # its pid is no process here, but it beat a second ago: another machine's live worker
        assert ops_repo.get(conn, fresh)["status"] == "running"


def test_an_unsigned_message_is_never_unpickled(redis_url, tmp_path):
    """Whoever reaches Redis cannot run code on a consumer: huey checks the signature first."""
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    huey = make_huey(redis_url, tmp_path, secret="test-queue-secret")
    huey.storage.enqueue(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="not found|mismatch"):
        huey.dequeue()
    assert not marker.exists()
