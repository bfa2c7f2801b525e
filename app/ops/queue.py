"""The task queue (huey): SQLite in the instance folder, Redis, or immediate for tests."""

from pathlib import Path

from huey import MemoryHuey, RedisHuey, SqliteHuey


def make_huey(queue, instance_path):
    """A huey instance for the QUEUE setting."""
    if str(queue).startswith(("redis://", "rediss://")):
        return RedisHuey("nube", url=queue)
    if queue == "immediate":
        return MemoryHuey("nube", immediate=True)  # huey's own test mode: tasks run at once
    return SqliteHuey("nube", filename=str(Path(instance_path) / "queue.sqlite"))
