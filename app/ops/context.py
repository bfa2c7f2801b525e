"""What an operation's work function gets: its row, its input, a log, and its adapters."""

import copy
import json
import logging
import threading
import time

from ..errors import OperationCanceled
from ..extensions import adapters
from ..repositories import operations as ops_repo


class OperationContext:
    """The running operation as its work function sees it."""

    def __init__(self, app, conn, row, time_limit, kind=None):
        self.app = app
        self.conn = conn
        self.id = row["id"]
        self.kind = row["kind"]
        self.target_id = row["target_id"]
        self.target_name = row["target_name"]
        self.actor = row["requested_by"]
        self.input = json.loads(row["input"] or "{}")
        self.config = app.config
        self.deadline = time.monotonic() + time_limit
        self.time_limit = time_limit
        self._adapters = adapters(app)
        # what the kind declares: its claim (the work takes its `each` part as it goes) and the
        # facts its undo reads; the work records them with remember(), nothing else on ctx
        self.claim = kind.claim if kind else None
        self.undo_data = dict.fromkeys(kind.undo_needs if kind else (), False)

    @property
    def hypervisor(self):
        """The libvirt adapter."""
        return self._adapters.hypervisor

    @property
    def storage(self):
        """The repository of images and disks."""
        return self._adapters.storage

    @property
    def provisioner(self):
        """The playbook runner."""
        return self._adapters.provisioner

    @property
    def adapters(self):
        """All adapters (for keys, known_hosts and the secret box)."""
        return self._adapters

    def remember(self, fact, value=True):
        """Record a fact the kind's undo needs (one it declares in its undo_needs)."""
        if fact not in self.undo_data:
            raise KeyError(f"{self.kind} declares no undo fact {fact!r}")
        self.undo_data[fact] = value

    def recalled(self, fact):
        """A fact the work recorded for the undo (False when it never got that far)."""
        return self.undo_data.get(fact, False)

    def with_connection(self, conn):
        """A copy of this context that uses another connection (for work in another thread)."""
        child = copy.copy(self)
        child.conn = conn
        return child

    def log(self, message, level="info"):
        """Append a line to this operation's log (visible at once to pages)."""
        for line in str(message).splitlines() or [""]:
            ops_repo.append_log(self.conn, self.id, line, level)

    def touch(self, target_type, target_id):
        """Record that this operation works on another target too (its history shows it)."""
        ops_repo.touch(self.conn, self.id, target_type, target_id)

    def error(self, message):
        """Append an error line to the log."""
        self.log(message, "error")

    def progress(self, done, total):
        """Record how many steps are done."""
        ops_repo.set_progress(self.conn, self.id, done, total)

    def deadline_left(self):
        """Seconds left before the kind's time limit."""
        return self.deadline - time.monotonic()

    fenced = None  # the runner's heartbeat sets it when the row left `running` under us

    def _lost(self):
        """Whether another controller's recovery took this operation over."""
        return self.fenced is not None and self.fenced.is_set()

    def should_stop(self):
        """True when cancel was requested, the kind's time limit has passed, or the operation
        was interrupted by another controller's recovery."""
        return (
            time.monotonic() > self.deadline
            or self._lost()
            or ops_repo.cancel_requested(self.conn, self.id)
        )

    def check(self):
        """Raise OperationCanceled when the operation should stop now."""
        if self._lost():
            raise OperationCanceled(
                "another controller's recovery interrupted this operation (no heartbeat seen"
                " in time): stopping here"
            )
        if time.monotonic() > self.deadline:
            raise OperationCanceled(f"time limit of {self.time_limit:.0f}s reached")
        if ops_repo.cancel_requested(self.conn, self.id):
            raise OperationCanceled("canceled on request")


class LogHandler(logging.Handler):
    """Routes ordinary `logging` calls made during an operation into its log."""

    def __init__(self, ctx):
        super().__init__(logging.INFO)
        self.ctx = ctx
        self.thread = threading.get_ident()

    def filter(self, record):
        """Only records of the thread running this operation (workers run several at once)."""
        return record.thread == self.thread and super().filter(record)

    def emit(self, record):
        """Write one record to the operation log."""
        try:
            level = "error" if record.levelno >= logging.ERROR else "info"
            self.ctx.log(self.format(record), level)
        except Exception:  # a logging failure must never fail the operation
            self.handleError(record)
