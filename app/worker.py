"""The queue consumer's entry point: `huey_consumer app.worker.huey -k thread -w WORKERS`."""

from . import create_app, tasks

app = create_app()
tasks.set_worker_app(app)
huey = tasks.huey
