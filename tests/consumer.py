"""Start and stop a real huey consumer for tests and benchmarks (stopped by its pid)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Consumer:
    """`huey_consumer app.worker.huey` in a child process with the given environment."""

    def __init__(self, env, workers=4, periodic=False, log=None):
        command = [
            str(Path(sys.executable).parent / "huey_consumer"),
            "app.worker.huey",
            "-k",
            "thread",
            "-w",
            str(workers),
            "-q",
        ]
        if not periodic:
            command.append("-n")
        self.log = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
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
