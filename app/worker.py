"""The queue consumer's entry point: `huey_consumer app.worker.huey -k thread -w WORKERS`.

The consumer runs operations on its WORKERS threads and the monitor in a thread of its own
(app/ops/consumer.py), so polling and recovery never wait for a free worker; `-n` (no periodic
tasks) starts no monitor.
"""

from . import create_app
from .ops.queue import queue_of

app = create_app()
huey = queue_of(app).huey
