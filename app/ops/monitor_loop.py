"""The monitor's loop: recovery of dead workers' operations and host polling, in a thread of its
own in every queue consumer, so that it runs whatever the operation workers are doing.

Each turn renews the monitor's lease (one consumer of a queue makes passes; the others try again
every interval), interrupts operations whose worker is gone, and polls every host once
MONITOR_INTERVAL has passed since the last pass recorded beside the lease, whichever consumer
made it. A turn then waits on the consumer's stop flag, so a stop ends the loop at once.
"""

import logging
import time

from ..extensions import adapters
from .recovery import recover

log = logging.getLogger(__name__)

MIN_INTERVAL = 1.0
# The lease outlives the wait between two renewals: a wait of at most one interval, then a turn
# whose host calls are each bounded by HOST_TIMEOUT (a few per host, 32 hosts at a time). A
# holder slower than that loses the lease to another consumer and stops at its next renewal:
# one pass overlaps at most, and every write a pass or a recovery makes is a compare-and-swap
# or idempotent.
LEASE_HOST_TIMEOUTS = 6
LEASE_MARGIN = 5.0
SWEEP_EVERY = 60.0  # seconds between sweeps of temp files left by dead writers


def interval_of(config):
    """Seconds between monitor passes."""
    return max(MIN_INTERVAL, float(config["MONITOR_INTERVAL"]))


def lease_ttl(config):
    """How long the monitor's lease lasts without a renewal."""
    host_calls = LEASE_HOST_TIMEOUTS * float(config["HOST_TIMEOUT"])
    return interval_of(config) + host_calls + LEASE_MARGIN


class MonitorLoop:
    """The monitor as one of the consumer's processes (huey's initialize/loop/shutdown)."""

    def __init__(self, app, lease, stop_flag):
        self.app = app
        self.lease = lease
        self.stop_flag = stop_flag
        self.interval = interval_of(app.config)
        self.token = None  # this loop's hold on the lease, while it has it
        self._swept = None  # when this holder last swept temp files (monotonic)

    def initialize(self):
        """Nothing to prepare: the first turn takes the lease."""

    def loop(self):
        """One turn, then wait for the next one (or the consumer's stop)."""
        try:
            wait = self.turn()
        except Exception:  # a database or queue outage: try again next interval
            log.exception("monitor: the turn failed")  # the next renewal says if we still hold it
            wait = self.interval
        self.stop_flag.wait(wait)

    def shutdown(self):
        """Give the lease back, so another consumer's monitor takes over at once."""
        if self.token is not None:
            self.lease.release(self.token)
            self.token = None

    def turn(self):
        """Recover, then poll when a pass is due, holding the lease; seconds until the next turn.

        Every wait is at most one interval (shorter than the lease), and a poll is always
        followed by a full interval, so no value found in the queue's storage can make the loop
        spin or stop polling."""
        if not self._hold():
            return self.interval  # another consumer's monitor has it
        self._sweep()
        recover(self.app)  # every turn: a dead worker's operation waits one interval at most
        now = time.time()
        due = self.lease.last_pass(now) + self.interval
        if now < due:
            return due - now  # at most one interval: last_pass is never after now
        if not self._hold():  # the lease is checked again right before the pass
            return self.interval
        from ..services import monitor  # the monitor reads every host: only here

        monitor.poll(self.app)
        self.lease.mark_pass(time.time())
        return self.interval

    def _hold(self):
        """Take or renew the lease; whether this loop holds it now."""
        if self.token is not None and self.lease.renew(self.token):
            return True
        self.token = self.lease.acquire()
        if self.token is not None:
            self._swept = None  # a new holder sweeps first
        return self.token is not None

    def _sweep(self):
        """Delete temp files dead writers left, once a SWEEP_EVERY, on the lease holder."""
        if self._swept is not None and time.monotonic() - self._swept < SWEEP_EVERY:
            return
        self._swept = time.monotonic()
        adapters(self.app).storage.sweep_partials()
