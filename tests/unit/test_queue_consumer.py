"""The web path through a real huey consumer: enqueued operations run once each."""

import signal

import pytest

from app.db import get_db
from app.ops.queue import queue_of
from app.services import hosts, vms
from tests.processes import Consumer, app_for, queue_env
from tests.wait import wait_for

pytestmark = pytest.mark.slow  # a real huey consumer process


@pytest.fixture
def queued_app(tmp_path):
    """An app whose operations go through huey's SQLite queue, and the env for its consumer."""
    env = queue_env(tmp_path)
    application = app_for(env)
    yield application, env
    application.extensions["nube"].hypervisor.close()


def stop_consumer(consumer):
    """Stop a consumer within Consumer.stop's bounds; fail if it had to be killed."""
    consumer.stop()  # SIGINT, up to 20 s, then SIGKILL
    code = consumer.process.returncode
    if code is None or code == -signal.SIGKILL:
        pytest.fail(f"the huey consumer (pid {consumer.process.pid}) ignored SIGINT for 20 s")


def test_enqueued_operations_run_once_each(queued_app):
    app, env = queued_app
    with app.app_context():  # as the system
        hosts.add(
            {"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h"}, "t", wait=True
        )
        ids = [
            vms.add({"id": f"q{n}", "image": "base.raw", "mem": 16}, "t", wait=False)
            for n in range(12)
        ]
        for op_id in ids[:4]:
            queue_of(app).enqueue(op_id)  # a duplicate delivery of the same operation
    consumer = Consumer(env, workers=4)
    try:
        with app.app_context():
            conn = get_db()

            def statuses():
                return [
                    r[0]
                    for r in conn.execute("SELECT status FROM operations WHERE kind = 'vm.create'")
                ]

            wait_for(
                lambda: all(s == "succeeded" for s in statuses()),
                timeout=60,
                interval=0.1,
                message=lambda: f"all 12 vm.create operations to succeed (now {statuses()})",
            )
            assert statuses() == ["succeeded"] * 12
            starts = conn.execute(
                "SELECT COUNT(*) FROM operation_log WHERE message LIKE 'create VM started by%'"
            ).fetchone()[0]
            assert starts == 12  # each ran once, duplicates included
            assert conn.execute("SELECT COUNT(*) FROM vms WHERE task IS NULL").fetchone()[0] == 12
    finally:
        stop_consumer(consumer)
