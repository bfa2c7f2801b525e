"""Checks on user input shared by the services; each raises InvalidInput with a clear message."""

import re

from .. import addresses
from ..config import bool_word
from ..errors import InvalidInput
from ..limits import (
    FINGERPRINT_MESSAGE,
    FINGERPRINT_RE,
    HOST_PASSWORD_MAX,
    HOST_PASSWORD_MESSAGE,
)
from ..numbers import MAX_DIGITS, is_digits, parse_id

NETWORK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def require_dict(value, what):
    """The value itself, when it is a dict."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a dict, not {type(value).__name__}")
    return value


def refuse_unknown(data, allowed, what):
    """Refuse keys the caller may have mistyped."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown {what} field(s): {', '.join(unknown)}")


def text(data, key, *, required=True, default=None):
    """A stripped string field, or the default when absent and optional."""
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{key} is required")
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be text")
    if "\x00" in value:
        raise InvalidInput(f"{key} must not contain NUL characters")
    return value.strip()


def integer(data, key, *, required=True, default=None, minimum=None, maximum=None):
    """An integer field (digit strings accepted) within bounds."""
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{key} is required")
        return default
    if isinstance(value, bool):
        raise InvalidInput(f"{key} must be a whole number")
    if isinstance(value, str) and is_digits(value.strip().removeprefix("-")):
        if len(value.strip()) > MAX_DIGITS:
            raise InvalidInput(f"{key} is out of range")
        value = int(value.strip())
    if not isinstance(value, int):
        raise InvalidInput(f"{key} must be a whole number, not {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{key} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{key} must be at most {maximum}")
    return value


def within(data, bounds, *, required=True, default=None):
    """A whole-number field within its app.limits Bounds, refused with their message."""
    value = integer(data, bounds.field, required=required, default=default)
    message = None if value is None else bounds.message_for(value)
    if message:
        raise InvalidInput(message)
    return value


def host_password(data):
    """A host's sudo password: None when absent, else text of at most HOST_PASSWORD_MAX."""
    password = data.get("password") or None
    if password is not None and not isinstance(password, str):
        raise InvalidInput("password must be text")
    if password is not None and len(password) > HOST_PASSWORD_MAX:
        raise InvalidInput(HOST_PASSWORD_MESSAGE)
    return password


def boolean(data, key, default):
    """A boolean field; words like 'yes'/'no' accepted."""
    value = data.get(key, default)
    parsed = bool_word(value)
    if parsed is None:
        raise InvalidInput(f"{key} must be true or false, not {value!r}")
    return parsed


def address(value):
    """A host name, an IPv4 address or an IPv6 address (no zone id), normalised."""
    return addresses.check_address(value)


def user(value):
    """A POSIX user name."""
    return addresses.check_user(value)


def name(value, what="name"):
    """A display name used in URLs and libvirt: letters, digits, '_', '.', '-'."""
    if not isinstance(value, str) or not addresses.NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"{what} {value!r} must start with a letter or digit and use only letters, digits,"
            " '_', '.' and '-' (at most 63)"
        )
    return value


def network(value):
    """'none', 'bridge:NAME' or a libvirt network name."""
    if value == "none":
        return value
    bridge = value.removeprefix("bridge:")
    if not NETWORK_RE.fullmatch(bridge):
        raise InvalidInput(f"network {value!r} must be 'none', 'bridge:NAME' or a network name")
    return value


def choice(value, choices, what):
    """One of a fixed set of words."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(f"{what} must be one of {', '.join(choices)}, not {value!r}")
    return value


def fingerprint(value):
    """A host key's fingerprint as ssh-keygen -l prints it (SHA256:...), stripped."""
    value = text({"fingerprint": value}, "fingerprint")
    if not FINGERPRINT_RE.fullmatch(value):
        raise InvalidInput(FINGERPRINT_MESSAGE)
    return value


def host_id(value):
    """A host id: an int, or a string of digits."""
    if isinstance(value, bool):
        raise InvalidInput("host id must be a number")
    if isinstance(value, int):
        return value
    parsed = parse_id(value) if isinstance(value, str) else None
    if parsed is not None:
        return parsed
    raise InvalidInput(f"host id must be a number, not {value!r}")
