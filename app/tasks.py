"""Huey tasks; `huey_consumer app.tasks.huey -k thread -w WORKERS` runs them."""

import os
import threading

from flask import current_app, has_app_context

from .config import load_settings
from .ops.queue import make_huey

INSTANCE_PATH = os.environ.get(
    "NUBE_INSTANCE_PATH", os.path.join(os.path.dirname(os.path.dirname(__file__)), "instance")
)

huey = make_huey(load_settings(INSTANCE_PATH)["QUEUE"], INSTANCE_PATH)

_app = None
_app_lock = threading.Lock()


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
