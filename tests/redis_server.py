"""A Redis server the tests start themselves: Debian's redis-server on 127.0.0.1 and a free
port, with its own temp folder and no persistence (no system service), stopped by its pid.

Test modules that need it import the fixtures: `from tests.redis_server import redis_url`.
Without the `redis` package or the server they skip, except under CI, where they fail."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.processes import free_port

SERVER = "redis-server"
START_TIMEOUT = 15.0


def unavailable_reason():
    """Why a Redis server cannot run for the tests here, or None."""
    try:
        import redis  # noqa: F401  huey's Redis storage needs it
    except ImportError:
        return "the redis package is not installed (make venv installs requirements.txt)"
    if not server_path():
        return "redis-server is not installed (make test installs Debian's redis-server)"
    return None


def server_path():
    """Where redis-server is, or None."""
    return shutil.which(SERVER, path=os.environ.get("PATH", "") + ":/usr/bin:/usr/sbin")


def ping(port, timeout=1.0):
    """True when a Redis server answers PING on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on loopback, in its own temp folder."""

    def __init__(self):
        self.top = Path(tempfile.mkdtemp(prefix="nube-redis-"))
        self.port = None
        self.process = None
        self._log = None

    @property
    def url(self):
        """The URL of its database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        """Start it; returns once it answers PING (another port if a race took this one)."""
        for _ in range(3):
            self.port = free_port()
            self._log = open(self.top / "redis.log", "ab")  # noqa: SIM115  closed in _reap()
            self.process = subprocess.Popen(
                [server_path(), "--port", str(self.port), "--bind", "127.0.0.1",
                 "--protected-mode", "yes", "--dir", str(self.top),
                 # a throwaway server: nothing is written to disk
                 "--save", "", "--appendonly", "no", "--daemonize", "no"],
                stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT
            while self.process.poll() is None and time.monotonic() < deadline:
                if ping(self.port):
                    return self
                time.sleep(0.05)
            self._reap()
        log = (self.top / "redis.log").read_text(errors="replace")
        raise RuntimeError(f"redis-server did not start: {log[-2000:]}")

    def _reap(self):
        """Stop the process by its pid (SIGTERM, then SIGKILL) and close its log."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def flush(self):
        """Empty every database (between tests)."""
        import redis

        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def stop(self):
        """Stop the server and delete its folder."""
        self._reap()
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    """A Redis server for the session, stopped by pid at its end."""
    reason = unavailable_reason()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI must run the Redis tests: {reason}")
    if reason:
        pytest.skip(reason)
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The session's Redis server, emptied for this test: its URL."""
    redis_server.flush()
    return redis_server.url
