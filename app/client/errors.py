"""What can go wrong in the client, each with the exit code docs/api.md gives it."""

USAGE = 2
UNREACHABLE = 7
# HTTP status -> exit code; any other 4xx is refused input (3), a 3xx or 5xx the controller's (7)
EXIT_FOR_STATUS = {400: 3, 422: 3, 401: 4, 403: 4, 404: 5, 409: 6}


class UsageError(Exception):
    """Bad arguments, no URL or token configured, or an unusable file: exit 2."""

    exit_code = USAGE


def exit_code_for(status):
    """The exit code of an HTTP status (None: the controller was not reached)."""
    if status is None or status < 400 or status >= 500:
        return UNREACHABLE
    return EXIT_FOR_STATUS.get(status, 3)


class ApiError(Exception):
    """A request the API refused or could not answer: its status (None when the controller was
    not reached), the problem's detail, the problem document itself and the exit code."""

    def __init__(self, status, detail, problem=None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problem = problem or {}
        self.exit_code = exit_code_for(status)
