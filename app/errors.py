"""One small hierarchy of errors shared by the core API, services and the web layer."""

import re


class NubeError(Exception):
    """Base class of every error Nube raises on purpose."""


class InvalidInput(NubeError, ValueError):
    """The caller's input is wrong; nothing was changed."""


class Conflict(InvalidInput):
    """The target is busy, in the wrong state, or the name is taken."""


class QuotaExceeded(Conflict):
    """A project's quota leaves no room for what was asked; nothing was changed."""


class Forbidden(NubeError, PermissionError):
    """The caller's role may not do this at all (a resource of another project is NotFound)."""


class NotFound(NubeError, LookupError):
    """The host, VM, image, user or operation does not exist."""


class TokenRefused(NubeError):
    """An API token that is malformed, unknown, expired or revoked: nobody is authenticated."""


class Busy(NubeError):
    """The target already has a task in progress."""

    def __init__(self, message, operation_id=None):
        super().__init__(message)
        self.operation_id = operation_id


class HostUnreachable(NubeError):
    """A host did not answer (connection refused, timed out, or broken)."""


class SlowCall(HostUnreachable):
    """A heavy libvirt call outlived its limit: the host answered too slowly, and the call
    may still finish there. Callers read the domain's real state before they decide."""


class HostKeyChanged(HostUnreachable):
    """The machine at a host's address offers other keys than the ones recorded for it."""

    PATTERN = re.compile(r"the SSH host key of \S+ has changed: recorded ")

    def __init__(self, address, recorded, offered):
        self.address, self.recorded, self.offered = address, recorded, offered
        super().__init__(
            f"the SSH host key of {address} has changed: recorded {', '.join(recorded)}; offered"
            f" {', '.join(offered) or 'nothing'}. If the host was reinstalled, an admin can"
            " accept the new key on the host's page; otherwise something else answers at"
            " this address."
        )

    @classmethod
    def named_in(cls, message) -> bool:
        """Whether a stored error message (a host's, an operation's) is this refusal."""
        return bool(message) and cls.PATTERN.search(message) is not None


class OperationCanceled(NubeError):
    """An operation stopped because somebody asked it to."""


class OperationFailed(NubeError):
    """An operation ended in failure; carries the operation row and its log."""

    def __init__(self, message, operation=None, log=""):
        detail = f"{message}\n--- operation log ---\n{log}" if log else message
        super().__init__(detail)
        self.summary = message
        self.operation = operation
        self.log = log
