"""The kinds of operation Nube knows, each with its work function and limits."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of operation: what it does, what undoes a failed start, and its time limit."""

    name: str
    target_type: str
    work: Callable
    on_failure: Callable | None = None
    time_limit: float = 600.0
    label: str = ""


KINDS: dict[str, Kind] = {}


def operation(name, target_type, *, time_limit=600.0, label=""):
    """Register the decorated function as the work of an operation kind."""

    def register(work):
        KINDS[name] = Kind(name, target_type, work, time_limit=time_limit, label=label or name)
        work.kind = name
        return work

    return register


def on_failure(name):
    """Register the decorated function as the clean-up of a failed or interrupted kind."""

    def register(cleanup):
        kind = KINDS[name]
        KINDS[name] = Kind(
            kind.name, kind.target_type, kind.work, cleanup, kind.time_limit, kind.label
        )
        return cleanup

    return register


def get(name):
    """The registered kind with this name."""
    return KINDS[name]
