"""The `nube` console script: parse the command line, run the command, turn errors into exit codes."""

import os
import sys

from .errors import ApiError, UsageError
from .parser import build_parser
from .session import Session

INTERRUPTED = 130


def _exit_code(stop):
    """The exit code argparse asked for (0 after --help, 2 after a usage error)."""
    if stop.code is None:
        return 0
    return stop.code if isinstance(stop.code, int) else 2


def main(argv=None):
    """Run `nube` with argv (default: the command line); returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        return _exit_code(stop)
    session = Session(args)
    try:
        return args.handler(session)
    except ApiError as error:
        hint = " (nube login URL saves a valid token)" if error.status == 401 else ""
        session.error(f"{error.detail}{hint}")
        return error.exit_code
    except UsageError as error:
        session.error(str(error))
        return error.exit_code
    except KeyboardInterrupt:
        session.error("interrupted")
        return INTERRUPTED
    except BrokenPipeError:  # `nube vm list | head`: the reader went away
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
