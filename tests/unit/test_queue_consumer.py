"""The web path through a real huey consumer: enqueued operations run once each."""

import os
import time

import pytest

from app import create_app, tasks
from app.db import get_db
from app.services import hosts, vms
from tests.conftest import make_image
from tests.processes import Consumer


@pytest.fixture
def queued_app(tmp_path):
    """An app whose operations go through huey's SQLite queue, and the env for its consumer."""
    repository = tmp_path / "iaas"
    (repository / "vms").mkdir(parents=True)
    (repository / "images").mkdir()
    make_image(repository / "images" / "base.raw")
    env = {
        **os.environ,
        "NUBE_INSTANCE_PATH": str(tmp_path / "instance"),
        "NUBE_DATABASE": str(tmp_path / "nube.sqlite"),
        "NUBE_REPOSITORY": str(repository),
        "NUBE_LIBVIRT_URI": "test:///default",
        "NUBE_PROVISIONER": "recording",
        "NUBE_QUEUE": "sqlite",
        "NUBE_SECRET_KEY": "x",
    }
    settings = {
        key.removeprefix("NUBE_"): value
        for key, value in env.items()
        if key.startswith("NUBE_") and key != "NUBE_INSTANCE_PATH"
    }
    return create_app({**settings, "INSTANCE_PATH": env["NUBE_INSTANCE_PATH"]}), env


def test_enqueued_operations_run_once_each(queued_app):
    app, env = queued_app
    with app.test_request_context():
        hosts.add(
            {"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h"}, "t", wait=True
        )
        ids = [
            vms.add({"id": f"q{n}", "image": "base.raw", "mem": 16}, "t", wait=False)
            for n in range(12)
        ]
        for op_id in ids[:4]:
            tasks.run_operation(op_id)  # a duplicate delivery of the same operation
    consumer = Consumer(env, workers=4)
    try:
        deadline = time.monotonic() + 60
        with app.app_context():
            conn = get_db()
            while time.monotonic() < deadline:
                statuses = [
                    r[0]
                    for r in conn.execute("SELECT status FROM operations WHERE kind = 'vm.create'")
                ]
                if all(s == "succeeded" for s in statuses):
                    break
                time.sleep(0.1)
            assert statuses == ["succeeded"] * 12
            starts = conn.execute(
                "SELECT COUNT(*) FROM operation_log WHERE message LIKE 'create VM started by%'"
            ).fetchone()[0]
            assert starts == 12  # each ran once, duplicates included
            assert conn.execute("SELECT COUNT(*) FROM vms WHERE task IS NULL").fetchone()[0] == 12
    finally:
        consumer.stop()
