"""Processes tests and benchmarks start, each stopped by its pid: gunicorn, the queue consumer."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Consumer:
    """`huey_consumer ENTRY` (app.worker.huey unless told) in a child process with an env."""

    def __init__(self, env, workers=4, periodic=False, log=None, entry="app.worker.huey"):
        command = [
            str(Path(sys.executable).parent / "huey_consumer"),
            entry,
            "-k",
            "thread",
            "-w",
            str(workers),
            "-q",
        ]
        if not periodic:
            command.append("-n")
        self.log = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        # huey_consumer imports `app` through the venv's editable install, which may point at
        # another checkout (a git worktree shares the main one's venv): this one comes first.
        path = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "PYTHONPATH": path},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self):
        """SIGINT (huey's graceful stop), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not subprocess.DEVNULL:
            self.log.close()


def app_for(env):
    """An app in this process with the settings a consumer or server gets from env (its
    NUBE_* variables), to write rows and enqueue what those processes run."""
    from app import create_app

    settings = {
        key.removeprefix("NUBE_"): value
        for key, value in env.items()
        if key.startswith("NUBE_") and key != "NUBE_INSTANCE_PATH"
    }
    return create_app({**settings, "INSTANCE_PATH": env["NUBE_INSTANCE_PATH"]})


def queue_env(folder, **settings):
    """The env of a consumer and its app on huey's SQLite queue in folder (a repository with
    a small base image, libvirt's test driver, the recording provisioner), plus NUBE_ settings."""
    from tests.factories import make_image

    repository = Path(folder) / "iaas"
    (repository / "vms").mkdir(parents=True)
    (repository / "images").mkdir()
    make_image(repository / "images" / "base.raw")
    return {
        **os.environ,
        "NUBE_INSTANCE_PATH": str(Path(folder) / "instance"),
        "NUBE_DATABASE": str(Path(folder) / "nube.sqlite"),
        "NUBE_REPOSITORY": str(repository),
        "NUBE_LIBVIRT_URI": "test:///default",
        "NUBE_PROVISIONER": "recording",
        "NUBE_QUEUE": "sqlite",
        "NUBE_SECRET_KEY": "x",
        **{f"NUBE_{key}": str(value) for key, value in settings.items()},
    }


def free_port():
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A gunicorn serving Nube on loopback, stopped by its pid."""

    def __init__(self, env, workers=1, threads=1, log=None):
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--bind",
                f"127.0.0.1:{self.port}",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def worker_rss_mb(self):
        """Resident memory of the worker processes, in MB (the largest one)."""
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        sizes = []
        for pid in children:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return max(sizes) if sizes else 0.0

    def stop(self):
        """Stop gunicorn and wait for it."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
