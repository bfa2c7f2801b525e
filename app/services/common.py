"""Helpers every service uses: the connection, the actor, audit records, new operation rows."""

from flask import g, has_request_context, request

from ..db import get_db
from ..repositories import audit as audit_repo
from ..repositories import operations as ops_repo


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


def new_operation(conn, kind, target_id, target_name, actor, input_data=None):
    """Write a pending operation row of a Kind (and its audit record); returns its id."""
    target_type = kind.target_type
    op_id = ops_repo.insert(
        conn,
        kind=kind.name,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        target_name=target_name,
        requested_by=actor,
        input_data=input_data,
    )
    audit(conn, actor, kind.name, f"{target_type}:{target_name}", f"operation {op_id}")
    return op_id


def busy_message(kind_of_target, name, task, op_id):
    """The message a second request on a busy target gets."""
    return f"busy: {kind_of_target} {name} is {task} (operation {op_id} is running)"
