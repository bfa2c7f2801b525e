"""Huey tasks, bound to the huey instance that the QUEUE setting names.

`create_app` configures the instance for its app; the consumer runs
`huey_consumer app.worker.huey`, an app built from the environment (`NUBE_*`).
"""

import threading
import time

from flask import current_app, has_app_context
from huey import crontab

from .ops.queue import make_huey

_lock = threading.Lock()
_configured = None
_app = None
_last_pass = float("-inf")

huey = None  # set by configure()
run_operation = None
monitor = None


def configure(queue, instance_path):
    """Build the huey instance for a QUEUE setting and bind the tasks to it (once per setting)."""
    global huey, run_operation, monitor, _configured
    key = (queue, str(instance_path))
    with _lock:
        if _configured != key:
            huey = make_huey(queue, instance_path)
            run_operation = huey.task(name="run_operation")(_run_operation)
            monitor = huey.periodic_task(crontab(minute="*"), name="monitor")(
                huey.lock_task("nube-monitor")(_monitor)
            )
            _configured = key
        return huey


def set_worker_app(app):
    """Name the app a consumer process runs its tasks in."""
    global _app
    _app = app


def worker_app():
    """The Flask app this worker runs operations in (the current one, or the consumer's)."""
    if has_app_context():
        return current_app._get_current_object()
    with _lock:
        if _app is None:
            from . import create_app

            set_worker_app(create_app())
        return _app


def _run_operation(op_id):
    """Run one operation row; a duplicate delivery finds it claimed and does nothing."""
    from .ops.runner import execute

    execute(op_id, worker_app())


def _monitor():
    """Monitor passes every MONITOR_INTERVAL seconds within this minute; stale operations recovered."""
    global _last_pass
    from .extensions import adapters
    from .ops.recovery import recover
    from .services.monitor import poll

    app = worker_app()
    interval = max(1.0, app.config["MONITOR_INTERVAL"])
    started = time.monotonic()
    recover(app)
    adapters(app).storage.sweep_partials()  # what a worker that died mid-write left
    if started - _last_pass < interval - 1:
        return  # intervals over a minute skip some minutes
    while True:
        _last_pass = time.monotonic()
        poll(app)
        next_pass = time.monotonic() + interval
        # the next minute's task takes over; the lock keeps two passes from overlapping
        if next_pass - started >= 58:
            return
        time.sleep(next_pass - time.monotonic())
