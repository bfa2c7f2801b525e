"""The volume sub-commands: one function each, taking the Session and returning the exit code."""

from .calls import act, list_items, part, show_item

VOLUME_COLUMNS = [
    ("name", "NAME"),
    ("size", "GiB"),
    ("format", "FORMAT"),
    ("vm", "VM"),
    ("target", "TARGET"),
    ("state", "STATE"),
    ("task", "TASK"),
    ("project", "PROJECT"),
]


def _path(name, action=""):
    """A volume's address under /api/v1, or one of its actions'."""
    return f"/volumes/{part(name)}" + (f"/{action}" if action else "")


def volume_list(session):
    """nube volume list [-q FILTER]"""
    return list_items(session, "/volumes", VOLUME_COLUMNS)


def volume_show(session):
    """nube volume show NAME"""
    return show_item(session, _path(session.args.name))


def volume_create(session):
    """nube volume create NAME --size GiB [--image I] [--project P]"""
    args = session.args
    body = {"name": args.name, "size": args.size}
    body.update({key: getattr(args, key) for key in ("image", "project") if getattr(args, key)})
    return act(session, "POST", "/volumes", body)


def volume_attach(session):
    """nube volume attach NAME VM"""
    return act(session, "POST", _path(session.args.name, "attach"), {"vm": session.args.vm})


def volume_detach(session):
    """nube volume detach NAME"""
    return act(session, "POST", _path(session.args.name, "detach"), {})


def volume_grow(session):
    """nube volume grow NAME SIZE"""
    return act(session, "POST", _path(session.args.name, "grow"), {"size": session.args.size})


def volume_remove(session):
    """nube volume remove NAME (refused while attached)"""
    return act(session, "DELETE", _path(session.args.name))
