"""Pages under load: 20 concurrent clients on loopback against gunicorn (as `make run` starts
it) with 10,000 VMs on 200 hosts; and the bytes a page and its live updates send per minute."""

import statistics
import tempfile
import threading
from pathlib import Path

from tests.bench.http import Session
from tests.bench.populate import populate

CLIENTS = 20
REQUESTS_PER_CLIENT = 40
POLL_SECONDS = 3  # static/live.js polls every 3 s while the tab is visible


def percentile(values, fraction):
    """The value below which `fraction` of the sorted values fall."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def hammer(url, paths):
    """Every client requests the paths in turn; returns latencies (ms) per path and errors."""
    latencies = {path: [] for path in paths}
    errors = []
    lock = threading.Lock()
    sessions = []
    for _ in range(CLIENTS):
        session = Session(url)
        session.login("bench", "bench-password")
        sessions.append(session)
    start = threading.Barrier(CLIENTS)

    def client(session):
        start.wait()
        for n in range(REQUESTS_PER_CLIENT):
            path = paths[n % len(paths)]
            try:
                response = session.get(path)
                ok = response.status == 200
            except Exception as exc:  # counted, never raised: the figure is the error count
                ok, response = False, exc
            with lock:
                if ok:
                    latencies[path].append(response.client_ms)
                else:
                    errors.append(f"{path}: {response}")

    threads = [threading.Thread(target=client, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def live_bytes(session, page, poll):
    """Bytes of one page load, and of a minute of its live polling (unchanged: 304s)."""
    page_bytes = len(session.get(page).body)
    first = session.request_raw(poll)
    polls = [session.request_raw(poll, etag=first.etag) for _ in range(60 // POLL_SECONDS)]
    per_minute = sum(p.wire_bytes for p in polls)
    return {
        "page_bytes": page_bytes,
        "poll_bytes_first": first.wire_bytes,
        "poll_bytes_unchanged": polls[-1].wire_bytes,
        "live_bytes_per_minute": per_minute,
    }


def main(server_factory, environment):
    """Load figures for the overview and VM list pages, and their live-update cost."""
    with tempfile.TemporaryDirectory(prefix="nube-bench-load-") as tmp:
        env = environment(Path(tmp))
        populate(env, hosts=200, vms=10_000)
        server = server_factory(env, workers=2, threads=4)
        try:
            latencies, errors = hammer(server.url, ["/", "/vms/"])
            session = Session(server.url)
            session.login("bench", "bench-password")
            ids = ",".join(f"vm-{n:05d}" for n in range(50))
            live = {
                "overview": live_bytes(session, "/", "/live/overview"),
                "vm_list": live_bytes(session, "/vms/", f"/live/vms?ids={ids}"),
            }
        finally:
            server.stop()
    figures = {
        "clients": CLIENTS,
        "requests": CLIENTS * REQUESTS_PER_CLIENT,
        "errors": len(errors),
        "error_samples": errors[:5],
        "live": live,
    }
    for path, name in (("/", "overview"), ("/vms/", "vm_list")):
        values = latencies[path]
        figures[name] = {
            "median_ms": round(statistics.median(values), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
            "count": len(values),
        }
    return figures
