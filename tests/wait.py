"""One bounded polling helper for every test that waits on something asynchronous."""

import contextlib
import time

import pytest


def wait_for(predicate, timeout=10.0, interval=0.02, message="condition", ignore=()):
    """Call predicate() until it returns something truthy and return that value.

    After `timeout` seconds fail the test, saying what was awaited (`message`, or what a
    callable `message` returns then) and the last value seen. Exceptions listed in `ignore` count as "not yet" (their last one is reported).
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except ignore as error:  # an exception here means "not yet"
            last = error
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            pytest.fail(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


def join_all(threads, timeout=10.0, message="thread"):
    """Join threads within a shared deadline; fail naming any that still run."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [thread.name for thread in threads if thread.is_alive()]
    if alive:
        pytest.fail(f"{message} still running after {timeout} s: {', '.join(alive)}")


def stop_process(process, timeout=10.0, message="process"):
    """End a multiprocessing.Process: terminate, join within timeout, else kill and fail."""
    if process.is_alive():
        process.terminate()
    process.join(timeout)
    if process.is_alive():
        with contextlib.suppress(Exception):
            process.kill()
        process.join(5)
        pytest.fail(f"{message} (pid {process.pid}) did not stop within {timeout} s of SIGTERM")


class RecordingFlag:
    """A consumer's stop flag that is never set and records the waits asked of it instead of
    waiting (for the monitor loop's turns)."""

    def __init__(self):
        self.waits = []

    def is_set(self):
        """Never: the loop runs as long as the test turns it."""
        return False

    def wait(self, timeout=None):
        """Record the wait; return at once."""
        self.waits.append(timeout)
        return False
