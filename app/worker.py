"""The queue consumer's entry point: `huey_consumer app.worker.huey -k thread -w WORKERS`."""

from . import create_app
from .ops.queue import queue_of

app = create_app()
huey = queue_of(app).huey
