"""The client's settings file: where it is, reading it safely, writing it atomically as 0600."""

import json
import os
import secrets
from pathlib import Path

from .errors import UsageError

FILE_MODE = 0o600
FOLDER_MODE = 0o700
OPEN_TO_OTHERS = 0o077  # any permission for the group or others


class ConfigError(UsageError):
    """The settings file cannot be used: unreadable, not a JSON object, or open to others."""


def default_path(environ=None):
    """$XDG_CONFIG_HOME/nube/config.json, or ~/.config/nube/config.json."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):  # the XDG rule: a relative (or empty) value is ignored
        base = os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "nube" / "config.json"


def load(path):
    """The saved settings, {} when there is no file; refuses a file others may read or write
    (it holds a token), checked on the open file itself."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115  closed below
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    with handle:
        mode = os.fstat(handle.fileno()).st_mode & 0o777
        if mode & OPEN_TO_OTHERS:
            raise ConfigError(
                f"{path} is open to other users (mode {mode:o}) and holds a token: "
                f"run `chmod 600 {path}` (or `nube login` again)"
            )
        try:
            data = json.load(handle)
        except (ValueError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def save(path, data):
    """Write the settings atomically: a new file made 0600 from the start, renamed over the old."""
    path = Path(path)
    path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def same_url(first, second):
    """Whether two controller URLs are the same, a trailing slash aside."""
    return bool(first and second) and first.rstrip("/") == second.rstrip("/")


def connection(path, url=None, environ=None):
    """(url, token): --url or NUBE_URL before the file's URL, NUBE_TOKEN before its token. The
    saved token only ever goes to the URL it was saved for."""
    environ = os.environ if environ is None else environ
    url = url or environ.get("NUBE_URL") or None
    token = environ.get("NUBE_TOKEN") or None
    if url and token:
        return url, token  # the file is not needed, nor read
    saved = load(path)
    if not url:
        url = saved.get("url")
    if not token and (not saved.get("url") or same_url(url, saved.get("url"))):
        token = saved.get("token")
    return url, token
