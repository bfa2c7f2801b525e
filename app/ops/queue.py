"""The task queue (huey), one per app: SQLite in the instance folder, Redis, or immediate.

Each app builds its own queue with Nube's two tasks bound to it: `run_operation` (a task
carries only an operation id; the row is the truth) and `monitor` (periodic, in the consumer
only). The consumer runs `huey_consumer app.worker.huey`.
"""

import time
from pathlib import Path

from huey import MemoryHuey, RedisHuey, SqliteHuey, crontab

from ..extensions import adapters
from .recovery import recover
from .runner import execute

# huey's periodic tasks run at most once a minute; the monitor task makes its passes every
# MONITOR_INTERVAL seconds within its minute and returns before the next minute's run starts.
CRON_PERIOD = 60.0
CRON_MARGIN = 2.0  # time left for the pass that ends the minute
MIN_INTERVAL = 1.0


def make_huey(queue, instance_path):
    """A huey instance for the QUEUE setting."""
    if str(queue).startswith(("redis://", "rediss://")):
        return RedisHuey("nube", url=queue)
    if queue == "immediate":
        return MemoryHuey("nube", immediate=True)  # huey's own test mode: tasks run at once
    return SqliteHuey("nube", filename=str(Path(instance_path) / "queue.sqlite"))


class OperationQueue:
    """An app's huey instance with Nube's tasks bound to that app."""

    def __init__(self, app):
        self.app = app
        self.huey = make_huey(app.config["QUEUE"], app.instance_path)
        self.run_operation = self.huey.task(name="run_operation")(self._run_operation)
        self.monitor = self.huey.periodic_task(crontab(minute="*"), name="monitor")(
            self.huey.lock_task("nube-monitor")(self._monitor)
        )
        self._last_pass = float("-inf")

    def enqueue(self, op_id):
        """Queue an operation for a worker (immediate mode runs it now)."""
        self.run_operation(op_id)

    def _run_operation(self, op_id):
        """Run one operation row; a duplicate delivery finds it claimed and does nothing."""
        execute(op_id, self.app)

    def _monitor(self):
        """This minute's monitor passes, after recovering dead workers' operations and
        sweeping what they left half written."""
        from ..services.monitor import poll  # the monitor reads every host: only here

        interval = max(MIN_INTERVAL, self.app.config["MONITOR_INTERVAL"])
        started = time.monotonic()
        recover(self.app)
        adapters(self.app).storage.sweep_partials()
        if started - self._last_pass < interval - MIN_INTERVAL:
            return  # an interval over a minute skips some minutes
        while True:
            self._last_pass = time.monotonic()
            poll(self.app)
            next_pass = time.monotonic() + interval
            # the next minute's task takes over; its lock keeps two passes from overlapping
            if next_pass - started >= CRON_PERIOD - CRON_MARGIN:
                return
            time.sleep(next_pass - time.monotonic())


def init_app(app):
    """Give the app its queue."""
    app.extensions["nube_queue"] = OperationQueue(app)


def queue_of(app):
    """The app's queue."""
    return app.extensions["nube_queue"]
