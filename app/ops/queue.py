"""The task queue (huey), one per app: SQLite in the instance folder, Redis, or immediate.

Each app builds its own queue with Nube's two tasks bound to it: `run_operation` (a task
carries only an operation id; the row is the truth) and `monitor` (periodic, in the consumer
only). The consumer runs `huey_consumer app.worker.huey`.
"""

import hashlib
import hmac
import time
from pathlib import Path

from huey import MemoryHuey, RedisHuey, SqliteHuey, crontab
from huey.serializer import SignedSerializer

from ..extensions import adapters
from .lease import make_lease
from .recovery import recover
from .runner import execute

# With several consumers on one queue (Redis, or several on one SQLite file):
# - every consumer's scheduler enqueues `monitor` every 60 s from its own start, and any worker
#   may run any of them: N consumers, N monitor tasks a minute. One holds the lease and makes
#   the passes, the others return; passes are timed from the last one recorded beside the
#   lease, so they stay one per MONITOR_INTERVAL whichever consumer makes them.
# - a task delivered twice, or seen by two consumers, runs its operation once: the row's
#   pending → running compare-and-swap (runner.execute) decides.
# - results=False: the operation row is the result, and no result piles up in Redis.
# - utc=True (huey's default): consumers in different time zones agree on when a task is due.

# huey's periodic tasks run at most once a minute; the monitor task makes its passes every
# MONITOR_INTERVAL seconds within its minute and returns before the next minute's run starts.
CRON_PERIOD = 60.0
CRON_MARGIN = 2.0  # time left for the pass that ends the minute
MIN_INTERVAL = 1.0
# The lease outlives the wait between two renewals: a sleep, then a pass whose host calls are
# each bounded by HOST_TIMEOUT (a few per host, 32 hosts at a time). A holder slower than that
# loses the lease to another consumer and stops at its next renewal: one pass overlaps at most,
# and every write a pass or a recovery makes is a compare-and-swap or idempotent.
LEASE_HOST_TIMEOUTS = 6
LEASE_MARGIN = 5.0


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
        return RedisHuey("nube", url=queue, serializer=serializer, **options)
    if queue == "immediate":  # huey's own test mode: tasks run at once
        return MemoryHuey("nube", immediate=True, **options)
    return SqliteHuey("nube", filename=str(Path(instance_path) / "queue.sqlite"), **options)


class OperationQueue:
    """An app's huey instance with Nube's tasks bound to that app."""

    def __init__(self, app):
        self.app = app
        queue = app.config["QUEUE"]
        secret = queue_secret(app.config) if str(queue).startswith("redis") else None
        self.huey = make_huey(queue, app.instance_path, secret)
        self.run_operation = self.huey.task(name="run_operation")(self._run_operation)
        self.monitor = self.huey.periodic_task(crontab(minute="*"), name="monitor")(self._monitor)
        self.lease = make_lease(self.huey, "monitor", self._lease_ttl())

    def enqueue(self, op_id):
        """Queue an operation for a worker (immediate mode runs it now)."""
        self.run_operation(op_id)

    def _run_operation(self, op_id):
        """Run one operation row; a duplicate delivery finds it claimed and does nothing."""
        execute(op_id, self.app)

    def _interval(self):
        """Seconds between monitor passes."""
        return max(MIN_INTERVAL, float(self.app.config["MONITOR_INTERVAL"]))

    def _lease_ttl(self):
        """How long the monitor's lease lasts without a renewal."""
        wait = min(self._interval(), CRON_PERIOD)
        return wait + LEASE_HOST_TIMEOUTS * float(self.app.config["HOST_TIMEOUT"]) + LEASE_MARGIN

    def _monitor(self):
        """This minute's monitor passes, made by the one consumer that holds the lease."""
        token = self.lease.acquire()
        if token is None:
            return  # another consumer's task is making the passes
        try:
            adapters(self.app).storage.sweep_partials()
            self._passes(token)
        finally:
            self.lease.release(token)

    def _passes(self, token):
        """Recover and poll when due until the next minute's task takes over or we lose the lease."""
        from ..services.monitor import poll  # the monitor reads every host: only here

        interval = self._interval()
        ends = time.time() + CRON_PERIOD - CRON_MARGIN
        while self.lease.renew(token):
            recover(self.app)  # each pass, so a dead worker's operation waits one interval
            due = self.lease.last_pass() + interval
            if time.time() >= due:
                poll(self.app)
                self.lease.mark_pass(time.time())
                due = time.time() + interval
            if due >= ends:
                return  # an interval over a minute makes some minutes' tasks skip the poll
            time.sleep(max(0.0, due - time.time()))


def init_app(app):
    """Give the app its queue."""
    app.extensions["nube_queue"] = OperationQueue(app)


def queue_of(app):
    """The app's queue."""
    return app.extensions["nube_queue"]
