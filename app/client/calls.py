"""What every command does with the API: read a list page after page, show one object, start
an action and follow its operation, remove something."""

from urllib.parse import quote

from . import follow, output

PER_PAGE = 200  # the most the API gives at once: fewest requests for a whole list


def part(ref):
    """A host, VM or other name as one path segment."""
    return quote(str(ref), safe="")


def every_page(api, path, params):
    """Every item of a list, page after page."""
    items, page = [], 1
    while True:
        answer = api.request("GET", path, params={**params, "page": page}) or {}
        items.extend(answer.get("items") or [])
        if page >= int(answer.get("pages") or 1) or not answer.get("items"):
            return items
        page += 1


def list_items(session, path, columns, shown=None):
    """A list: every page, or only --page N; a table or JSON (rows made readable by shown)."""
    args = session.args
    api = session.api()
    params = {"q": getattr(args, "query", None) or None, "per_page": args.per_page}
    if args.page:
        answer = api.request("GET", path, params={**params, "page": args.page}) or {}
        items = answer.get("items") or []
        session.say(
            f"page {answer.get('page')} of {answer.get('pages')} ({answer.get('total')} in all)"
        )
    else:
        items = every_page(api, path, {**params, "per_page": args.per_page or PER_PAGE})
    rows = [shown(item) for item in items] if shown else items
    session.show(items, lambda out: output.table(rows, columns, out))
    return 0


def show_item(session, path, shown=None):
    """One object: its fields, or JSON (the fields made readable by shown)."""
    item = session.api().request("GET", path) or {}
    session.show(item, lambda out: output.record(shown(item) if shown else item, out))
    return 0


def gone(session, path, said):
    """A removal the API answers with 204: says what went (JSON: {})."""
    session.api().request("DELETE", path)
    session.show({}, lambda out: out.write(said + "\n"))
    return 0


def follow_operation(session, op_id):
    """Print an operation's log as it comes until it ends; 0 when it succeeded, else 1."""
    stream = session.notes if session.as_json else session.out  # stdout stays JSON with -o json

    def on_line(line):
        print(output.log_line(line), file=stream, flush=True)

    try:
        operation = follow.follow(session.api(), op_id, on_line)
    except KeyboardInterrupt:
        session.error(
            f"stopped following; operation {op_id} goes on: nube op show {op_id} --follow"
        )
        return 130
    status = operation.get("status")
    summary = f"operation {op_id} ({operation.get('kind', '?')}) {status}"
    if status != "succeeded":
        session.error(summary + (f": {operation['error']}" if operation.get("error") else ""))
    if session.as_json:
        output.as_json(operation, session.out)
    elif status == "succeeded":
        session.out.write(summary + "\n")
    return 0 if status == "succeeded" else 1


def act(session, method, path, body=None):
    """An action: 202 and an operation, followed with --wait; or 200 and the object."""
    answer = session.api().request(method, path, body) or {}
    operation = answer.get("operation") if isinstance(answer, dict) else None
    if not isinstance(operation, dict) or "id" not in operation:
        session.show(answer, lambda out: output.record(answer, out))
        return 0
    if getattr(session.args, "wait", False):
        return follow_operation(session, operation["id"])
    op_id = operation["id"]
    said = f"operation {op_id} ({operation.get('kind')}) {operation.get('status')}"
    session.show(answer, lambda out: out.write(f"{said}: nube op show {op_id} --follow\n"))
    return 0
