"""What a viewer who may not see hosts reads of operations and guest errors: the same text
with every host's address (and user@address) and the repository's path taken out, and other
users' names (who asked for an operation, who made a VM) as "another user".

Operations' logs and errors are written for operators ("placing web1 on host h1
(192.0.2.10)", "disk ready: /export/iaas/vms/web1.qcow2", "host h1 (192.0.2.10)
unreachable"); a project's member reads them about their own VMs, and DESIGN's rule is that
a member never sees hosts' addresses. Host names stay: a VM shows which host it is on.
"""

from flask import current_app

from ..repositories import hosts as hosts_repo
from . import access
from .common import db

HIDDEN_ADDRESS = "(host address)"
HIDDEN_USER = "another user"
HIDDEN_REPOSITORY = "(repository)"
OPERATION_TEXT = ("error", "input", "result")  # columns of an operation row that carry text
OPERATOR_ONLY = ("worker",)  # which controller process ran it


class Redactor:
    """Replaces what a member may not read in a text; built once per answer (a list builds one
    for all its rows)."""

    def __init__(self, repository, viewer_name):
        self.repository = repository
        self.viewer_name = viewer_name
        self._pairs = None  # read at the first text: lists need only names

    def pairs(self):
        """(what is hidden, what shows instead), longest first: 10.0.0.12 is replaced before
        10.0.0.1 could cut it in two."""
        if self._pairs is None:
            pairs = []
            for host in hosts_repo.search(db()):
                for address in {host["address"], host["data_address"]} - {None, ""}:
                    pairs.append((f"{host['user']}@{address}", HIDDEN_ADDRESS))
                    pairs.append((address, HIDDEN_ADDRESS))
            if self.repository:
                pairs.append((str(self.repository).rstrip("/"), HIDDEN_REPOSITORY))
            self._pairs = sorted(set(pairs), key=lambda pair: len(pair[0]), reverse=True)
        return self._pairs

    def text(self, value):
        """value with every address and the repository's path replaced (None stays None)."""
        if not isinstance(value, str):
            return value
        for secret, shown in self.pairs():
            value = value.replace(secret, shown)
        return value

    def user(self, name):
        """A user's name as the member reads it: their own, or "another user"."""
        return name if name in (None, self.viewer_name) else HIDDEN_USER

    def operation(self, row):
        """An operation row (dict) as the member reads it."""
        op = dict(row)
        if "requested_by" in op:
            op["requested_by"] = self.user(op["requested_by"])
        for key in OPERATION_TEXT:
            if key in op:
                op[key] = self.text(op[key])
        for key in OPERATOR_ONLY:
            if key in op:
                op[key] = None
        return op

    def log_line(self, line):
        """A log line (dict) as the member reads it."""
        return {**line, "message": self.text(line["message"])}


class _Nothing:
    """The redactor of viewers who may see hosts: everything as written."""

    def text(self, value):
        return value

    def user(self, name):
        return name

    def operation(self, row):
        return dict(row)

    def log_line(self, line):
        return line


def for_viewer():
    """The redactor for the current viewer (none for those who may see hosts)."""
    viewer = access.current()
    if viewer.may("hosts"):
        return _Nothing()
    return Redactor(current_app.config.get("REPOSITORY"), viewer.name)
