"""Operations throughput: 200 VM creations queued at once against 20 hosts, run by a real
huey consumer with 1 and with 4 workers; none may be lost or run twice."""

import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

from app import create_app
from app.db import get_db
from app.services import hosts, vms
from tests.conftest import make_image
from tests.processes import Consumer

NODE_XML = (
    "<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets>"
    "<cores>8</cores><threads>1</threads></cpu><memory>67108864</memory>"
    "<network><name>default</name><bridge name='virbr0'/></network></node>"
)
HOSTS = 20
OPERATIONS = 200


def _seconds(stamp):
    """An ISO timestamp as epoch seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_once(workers, database=None):
    """Queue the operations, run them with `workers` threads on `database` (else SQLite)."""
    with tempfile.TemporaryDirectory(prefix="nube-bench-ops-") as tmp:
        folder = Path(tmp)
        (folder / "nodes").mkdir()
        repository = folder / "iaas"
        (repository / "vms").mkdir(parents=True)
        (repository / "images").mkdir()
        make_image(repository / "images" / "base.raw", size="16M")
        env = {
            **os.environ,
            "NUBE_INSTANCE_PATH": str(folder / "instance"),
            "NUBE_DATABASE": database or str(folder / "nube.sqlite"),
            "NUBE_REPOSITORY": str(repository),
            "NUBE_LIBVIRT_URI": f"test://{folder}/nodes/{{address}}.xml",
            "NUBE_PROVISIONER": "recording",
            "NUBE_QUEUE": "sqlite",
            "NUBE_SECRET_KEY": "x",
            "NUBE_EXPORT": "none",
        }
        settings = {
            k.removeprefix("NUBE_"): v
            for k, v in env.items()
            if k.startswith("NUBE_") and k != "NUBE_INSTANCE_PATH"
        }
        app = create_app({**settings, "INSTANCE_PATH": env["NUBE_INSTANCE_PATH"]})
        with app.app_context():  # as the system
            for n in range(HOSTS):
                (folder / "nodes" / f"10.9.0.{n + 1}.xml").write_text(NODE_XML)
                hosts.add(
                    {
                        "address": f"10.9.0.{n + 1}",
                        "user": "nube",
                        "prepare": False,
                        "name": f"h{n:02d}",
                    },
                    "bench",
                    wait=True,
                )
            for n in range(OPERATIONS):
                vms.add({"id": f"b{n:03d}", "image": "base.raw", "mem": 64}, "bench", wait=False)
        consumer = Consumer(env, workers=workers)
        try:
            with app.app_context():
                conn = get_db()
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    pending = conn.execute(
                        "SELECT COUNT(*) FROM operations WHERE status IN ('pending', 'running')"
                    ).fetchone()[0]
                    if pending == 0:
                        break
                    time.sleep(0.1)
                rows = conn.execute(
                    "SELECT status, started_at, finished_at FROM operations"
                    " WHERE kind = 'vm.create'"
                ).fetchall()
                starts = conn.execute(
                    "SELECT COUNT(*) FROM operation_log WHERE message LIKE ?",
                    ("create VM started by%",),
                ).fetchone()[0]
                placed = conn.execute("SELECT COUNT(DISTINCT host_id) FROM vms").fetchone()[0]
        finally:
            consumer.stop()
        succeeded = sum(1 for r in rows if r["status"] == "succeeded")
        span = max(_seconds(r["finished_at"]) for r in rows) - min(
            _seconds(r["started_at"]) for r in rows
        )
        disks = len(list((repository / "vms").glob("*.qcow2")))
        return {
            "workers": workers,
            "operations": len(rows),
            "succeeded": succeeded,
            "lost": OPERATIONS - succeeded,
            "duplicated": starts - len(rows),
            "disks": disks,
            "hosts_used": placed,
            "seconds": round(span, 2),
            "ops_per_second": round(len(rows) / span, 1),
        }


def main():
    """Both worker counts; returns the figures."""
    return {f"workers_{w}": run_once(w) for w in (1, 4)}
