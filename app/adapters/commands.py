"""Long commands in their own process group, their output streamed into a log as it comes."""

import collections
import contextlib
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time

from app.errors import OperationFailed

POLL_SECONDS = 0.5
GRACE_SECONDS = 30.0  # mmdebstrap unmounts what it mounted in its tree when told to stop
MAX_LINE = 2000
_EOF = object()


class CommandFailed(OperationFailed):
    """A command ran and exited non-zero."""


def _read_lines(stream, lines):
    """Feed a pipe's lines into a queue, then _EOF (a thread: the pipe blocks)."""
    try:
        for raw in iter(stream.readline, b""):
            lines.put(raw.decode("utf-8", "replace").rstrip("\r\n")[:MAX_LINE])
    finally:
        lines.put(_EOF)


class CommandRunner:
    """Runs one command at a time for an operation: its output goes to the operation's log
    line by line, and it stops (its whole process group killed) when the operation must."""

    def __init__(self, poll=POLL_SECONDS, grace=GRACE_SECONDS):
        self.poll = poll
        self.grace = grace

    def missing(self, tools):
        """The tools of a list that are not on PATH (sbin included: root's tools live there)."""
        path = os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin"
        return [tool for tool in tools if shutil.which(tool, path=path) is None]

    def run(self, args, *, log, check, env=None, stdin_text=None, pass_fds=()):
        """Run args to the end, logging each output line. check() is called every poll: when
        it raises (cancel, time limit) the command's process group is killed and the error
        goes on. A non-zero exit raises CommandFailed with the last line it printed.
        pass_fds: descriptors the command inherits (a file opened here, never by path)."""
        log("$ " + shlex.join(args))
        proc = self._start(args, env, stdin_text, pass_fds)
        lines = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        recent = collections.deque(maxlen=1)
        try:
            self._follow(proc, lines, log, check, recent)
        except BaseException:
            self._kill(proc)
            raise
        finally:
            reader.join(timeout=5)
            proc.stdout.close()
        if proc.returncode != 0:
            last = f": {recent[-1]}" if recent else ""
            raise CommandFailed(f"{args[0]} failed (exit status {proc.returncode}){last}")

    def _start(self, args, env, stdin_text, pass_fds=()):
        """Start the command as the leader of a new session (and so of its own group)."""
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**_inherited(), **(env or {})},
                start_new_session=True,
                pass_fds=pass_fds,
            )
        except OSError as exc:
            raise OperationFailed(f"cannot run {args[0]}: {exc}") from exc
        if stdin_text is not None:
            with contextlib.suppress(BrokenPipeError), proc.stdin:
                proc.stdin.write(stdin_text.encode())  # a few lines: never fills the pipe
        return proc

    def _follow(self, proc, lines, log, check, recent):
        """Log lines until the output ends and the command has exited, checking every poll."""
        next_check = time.monotonic()
        done = False
        while not done or proc.poll() is None:
            try:
                line = lines.get(timeout=self.poll)
            except queue.Empty:
                line = None
            if line is _EOF:
                done = True
            elif line is not None:
                recent.append(line)
                log(line)
            if time.monotonic() >= next_check:
                check()
                next_check = time.monotonic() + self.poll
            if not done and proc.poll() is not None:
                # the command is gone but something it started still holds the pipe open
                _signal_group(proc.pid, signal.SIGKILL)

    def _kill(self, proc):
        """Ask the whole group to stop, then kill whatever is left after the grace period."""
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.grace)
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


# What a long command gets of the worker's environment: never the rest (NUBE_SECRET_KEY...).
INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TERM",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)


def _inherited():
    """The worker's environment variables a command may see."""
    return {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}


def _signal_group(pgid, signum):
    """Signal a process group if any of it is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
