"""The task queue (huey), one per app: SQLite in the instance folder, Redis, or immediate.

Each app builds its own queue with Nube's task bound to it: `run_operation` (a task carries only
an operation id; the row is the truth). The consumer (`huey_consumer app.worker.huey`) runs the
operations on its workers and the monitor in a thread of its own (app/ops/consumer.py).
"""

import hashlib
import hmac
from pathlib import Path

from huey.serializer import SignedSerializer
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage

from .consumer import NubeHuey
from .lease import make_lease
from .monitor_loop import MonitorLoop, lease_ttl
from .runner import execute

# With several consumers on one queue (Redis, or several on one SQLite file):
# - every consumer runs a monitor loop; the one holding the lease makes the passes, the others
#   try to take it every interval. Passes are timed from the last one recorded beside the
#   lease, so they stay one per MONITOR_INTERVAL whichever consumer makes them.
# - a task delivered twice, or seen by two consumers, runs its operation once: the row's
#   pending → running compare-and-swap (runner.execute) decides.
# - results=False: the operation row is the result, and no result piles up in Redis.
# - utc=True (huey's default): consumers in different time zones agree on when a task is due.


def queue_secret(config):
    """The key that signs queue messages: from CLUSTER_KEY (every controller has it), else
    SECRET_KEY. huey pickles its messages, and unpickling what anyone with access to Redis
    wrote would run their code as root: a message whose signature fails is never unpickled."""
    base = config.get("CLUSTER_KEY") or config.get("SECRET_KEY")
    if not base:
        raise RuntimeError("QUEUE=redis:// needs CLUSTER_KEY or SECRET_KEY to sign messages")
    return hmac.new(str(base).encode(), b"nube-queue", hashlib.sha256).hexdigest()


def make_huey(queue, instance_path, secret=None):
    """A huey instance for the QUEUE setting (Redis messages signed with `secret`)."""
    options = {"results": False, "utc": True}
    if str(queue).startswith(("redis://", "rediss://")):
        serializer = SignedSerializer(secret=secret, salt="nube")
        return NubeHuey(
            "nube", storage_class=RedisStorage, url=queue, serializer=serializer, **options
        )
    if queue == "immediate":  # huey's own test mode: tasks run at once
        return NubeHuey("nube", storage_class=MemoryStorage, immediate=True, **options)
    filename = str(Path(instance_path) / "queue.sqlite")
    return NubeHuey("nube", storage_class=SqliteStorage, filename=filename, **options)


class OperationQueue:
    """An app's huey instance with Nube's task bound to that app, and its monitor's lease."""

    def __init__(self, app):
        self.app = app
        queue = app.config["QUEUE"]
        secret = queue_secret(app.config) if str(queue).startswith("redis") else None
        self.huey = make_huey(queue, app.instance_path, secret)
        self.run_operation = self.huey.task(name="run_operation")(self._run_operation)
        self.lease = make_lease(self.huey, "monitor", lease_ttl(app.config))
        self.huey.make_monitor = self.make_monitor

    def enqueue(self, op_id):
        """Queue an operation for a worker (immediate mode runs it now)."""
        self.run_operation(op_id)

    def _run_operation(self, op_id):
        """Run one operation row; a duplicate delivery finds it claimed and does nothing."""
        execute(op_id, self.app)

    def make_monitor(self, stop_flag):
        """The monitor loop a consumer runs beside its workers until stop_flag is set."""
        return MonitorLoop(self.app, self.lease, stop_flag)


def init_app(app):
    """Give the app its queue."""
    app.extensions["nube_queue"] = OperationQueue(app)


def queue_of(app):
    """The app's queue."""
    return app.extensions["nube_queue"]
