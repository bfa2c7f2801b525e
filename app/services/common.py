"""Helpers every service uses: the connection, the actor, audit records, the busy message."""

from flask import g, has_request_context, request

from ..db import get_db
from ..repositories import audit as audit_repo


def db():
    """The current app context's connection."""
    return get_db()


def remote_addr():
    """Where the current request came from, if there is one."""
    return request.remote_addr if has_request_context() else None


def audit(conn, actor, action, target=None, detail=None):
    """Record who did what, to what, from where (and with which API token)."""
    token = g.get("api_token") if has_request_context() else None
    if token is not None:
        via = f"with API token {token['id']} {token['name']!r}"  # quoted: names are free text
        detail = f"{detail}; {via}" if detail else via
    audit_repo.add(conn, actor, action, target, detail, remote_addr())


def busy_message(kind_of_target, name, task, op_id):
    """The message a second request on a busy target gets."""
    return f"busy: {kind_of_target} {name} is {task} (operation {op_id} is running)"
