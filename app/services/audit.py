"""Audit log use cases: who did what, to what, from where."""

from ..repositories import audit as audit_repo
from . import access
from .common import db


def page(query="", limit=50, offset=0):
    """(records, total) matching a filter over actor/action/target/remote_addr/ts, newest first."""
    access.require("audit")
    rows, total = audit_repo.page(db(), query or "", limit, offset)
    return [dict(r) for r in rows], total
