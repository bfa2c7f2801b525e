"""Follow an operation to its end: poll its log after the last line seen, each line given once."""

import time

from .. import states
from .errors import UNREACHABLE, ApiError

FINISHED = frozenset(states.OPERATION_TERMINAL)
FIRST_DELAY = 1.0  # seconds between polls while lines come
LONGEST_DELAY = 4.0  # while nothing comes, the delay grows by BACKOFF up to this
BACKOFF = 1.5
RETRIES = 3  # failed polls in a row (controller unreachable or 5xx) before giving up


def split_answer(answer):
    """(operation, log lines, more) from GET /operations/N?after=M (the operation's fields with
    "log" and "more" beside them; an operation under "operation" is taken too)."""
    answer = answer if isinstance(answer, dict) else {}
    nested = answer.get("operation")
    operation = nested if isinstance(nested, dict) else answer
    lines = answer.get("log") or operation.get("log") or []
    more = bool(answer.get("more") or operation.get("more"))
    bare = {key: value for key, value in operation.items() if key not in ("log", "more")}
    return bare, lines if isinstance(lines, list) else [], more


def last_line_id(lines, after):
    """The highest line id among lines and after."""
    ids = [
        line["id"] for line in lines if isinstance(line, dict) and isinstance(line.get("id"), int)
    ]
    return max([after, *ids])


def poll(api, op_id, after):
    """One look at an operation: (operation, lines after `after`, more)."""
    return split_answer(api.request("GET", f"/operations/{op_id}", params={"after": after}))


def follow(api, op_id, on_line, sleep=time.sleep):
    """Poll the operation until it has finished and every log line is given to on_line;
    returns the finished operation. A few failed polls in a row are retried with backoff."""
    after, delay, failures = 0, FIRST_DELAY, 0
    while True:
        try:
            operation, lines, more = poll(api, op_id, after)
        except ApiError as error:
            failures += 1
            if error.exit_code != UNREACHABLE or failures > RETRIES:
                raise
            sleep(delay)
            delay = min(delay * BACKOFF, LONGEST_DELAY)
            continue
        failures = 0
        for line in lines:
            on_line(line)
        after = last_line_id(lines, after)
        finished = operation.get("status") in FINISHED
        if operation.get("done") is True or (finished and not lines and not more):
            return operation  # "done": finished with its last line sent (else: asked once more)
        if more or finished:
            continue  # fetch the rest at once
        if lines:
            delay = FIRST_DELAY
        sleep(delay)
        delay = min(delay * BACKOFF, LONGEST_DELAY)  # grows while nothing new comes


def read_whole_log(api, op_id):
    """(operation, every log line) of an operation as it is now, fetched page after page."""
    operation, lines, more = poll(api, op_id, 0)
    every = list(lines)
    while more and lines:
        operation, lines, more = poll(api, op_id, last_line_id(every, 0))
        every.extend(lines)
    return operation, every
