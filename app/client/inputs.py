"""What a command reads besides its arguments: secrets (a prompt or stdin, never argv), a yes
to a destructive action, and files."""

import contextlib
import getpass
import os
import sys

from .errors import UsageError

MAX_FILE = 1024 * 1024  # bytes: no key or user data file is bigger


def secret(prompt, from_stdin):
    """A secret from the first line of stdin (asked for, or stdin is a pipe), or typed at a
    prompt that does not echo it."""
    if from_stdin or not sys.stdin.isatty():  # getpass would warn and read the pipe anyway
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            value = getpass.getpass(prompt)
        except EOFError:
            value = ""
    if not value:
        raise UsageError(f"nothing was given for: {prompt.rstrip(': ')}")
    return value


def confirm(question, yes):
    """Go on when --yes was given or y is typed at a terminal; else UsageError, nothing sent
    (a script without a terminal must say --yes: it cannot be asked)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question} Give --yes to confirm (no terminal to ask at)")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("not confirmed: nothing was changed")


def read_text(path):
    """A text file's content ('-' is stdin)."""
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_FILE + 1)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    if len(text) > MAX_FILE:
        raise UsageError(f"{path} is larger than {MAX_FILE // 1024} KiB")
    return text


def ssh_keys(paths):
    """The public keys in the given files (one a line, comments skipped); refuses a private key."""
    keys = []
    for path in paths:
        text = read_text(path)
        if "PRIVATE KEY" in text:
            raise UsageError(f"{path} is a private key: give its public key (usually {path}.pub)")
        found = [
            line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
        ]
        if not found:
            raise UsageError(f"{path} holds no public key")
        keys.extend(found)
    return keys


@contextlib.contextmanager
def binary_file(path):
    """A file opened to be sent as it is, and its size: (handle, bytes)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below, after the request)
        size = os.fstat(handle.fileno()).st_size
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    with handle:
        yield handle, size
