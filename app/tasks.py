"""Huey tasks; `huey_consumer app.tasks.huey -k thread -w WORKERS` runs them."""

import os
import threading
import time

from flask import current_app, has_app_context
from huey import crontab

from .config import load_settings
from .ops.queue import make_huey

INSTANCE_PATH = os.environ.get(
    "NUBE_INSTANCE_PATH", os.path.join(os.path.dirname(os.path.dirname(__file__)), "instance")
)

huey = make_huey(load_settings(INSTANCE_PATH)["QUEUE"], INSTANCE_PATH)

_app = None
_app_lock = threading.Lock()
_last_pass = float("-inf")


def worker_app():
    """The Flask app this worker runs operations in (the current one, or one from the env)."""
    global _app
    if has_app_context():
        return current_app._get_current_object()
    with _app_lock:
        if _app is None:
            from . import create_app

            _app = create_app()
        return _app


@huey.task()
def run_operation(op_id):
    """Run one operation row; a duplicate delivery finds it claimed and does nothing."""
    from .ops.runner import execute

    execute(op_id, worker_app())


@huey.periodic_task(crontab(minute="*"))
@huey.lock_task("nube-monitor")
def monitor():
    """Monitor passes every MONITOR_INTERVAL seconds within this minute; stale operations recovered."""
    from .ops.recovery import recover
    from .services.monitor import poll

    global _last_pass
    app = worker_app()
    interval = max(1.0, app.config["MONITOR_INTERVAL"])
    started = time.monotonic()
    recover(app)
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
