"""Numbers for the dashboard's pictures: usage bars and the host history chart.

Everything here is arithmetic on rows already read; templates turn the results into Bootstrap
progress bars and inline SVG, so no picture needs JavaScript.
"""

from datetime import datetime

from .. import states
from . import monitor

# Usage bar colours (Bootstrap names), by the first threshold the percentage exceeds.
# Over 100 % means memory or vCPUs are overcommitted.
USAGE_LEVELS = ((100, "danger"), (89, "warning"), (-1, "primary"))

# The history chart's canvas (SVG user units) and the plot box inside it.
WIDTH, HEIGHT = 640, 200
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 48, 12, 30


def usage(used, total):
    """A usage bar: percent (None when total is unknown), bar width (≤ 100) and colour."""
    used = used or 0
    if not total:
        return {"used": used, "total": total, "percent": None, "width": 0, "colour": "secondary"}
    percent = round(100 * used / total)
    colour = next(name for limit, name in USAGE_LEVELS if percent > limit)
    return {
        "used": used,
        "total": total,
        "percent": percent,
        "width": min(100, percent),
        "colour": colour,
    }


def operation_progress(op):
    """An operation's progress as every page, poll and the API show it: the percent of its
    tasks done (100 when it counts none; where it stopped when it ended) and the text that says
    how far it is or what it waits for. op is a row or dict with status, progress_done,
    progress_total and cancel_requested."""
    op = dict(op)  # a database row or a dict, with or without every key
    done, total = op.get("progress_done") or 0, op.get("progress_total") or 0
    status = op.get("status")
    if total:
        percent, text = min(100, round(100 * done / total)), f"{done} of {total} tasks"
    else:
        percent, text = 100, states.OPERATION_WAITING.get(status, "")
    if status in states.OPERATION_ACTIVE and op.get("cancel_requested"):
        text = f"{text}, canceling" if total else "canceling"
    return {"percent": percent, "text": text}


def _seconds(stamp):
    """Seconds since the epoch of a stored ISO time."""
    return datetime.fromisoformat(stamp).timestamp()


def _short(stamp):
    """A sample's time as 'MM-DD HH:MM' for an axis label."""
    return f"{stamp[5:10]} {stamp[11:16]}" if stamp else ""


def _xs(stamps, left, right):
    """x of each sample by its time: the oldest on the left edge, the newest on the right."""
    times = [_seconds(s) for s in stamps]
    span = times[-1] - times[0] if times else 0
    if span <= 0:
        return [float(right)] * len(times)  # one sample (or one instant): at the newest edge
    return [left + (t - times[0]) / span * (right - left) for t in times]


def _y(value, top_value, top, bottom):
    """y of a value on an axis from 0 (bottom) to top_value (top), clamped to the plot box."""
    fraction = min(1.0, max(0.0, value / top_value)) if top_value else 0.0
    return bottom - fraction * (bottom - top)


def series(xs, values, top_value, top, bottom):
    """Polyline points ('x,y x,y ...') and the last point of one series; None values skipped."""
    pairs = [
        (x, _y(v, top_value, top, bottom)) for x, v in zip(xs, values, strict=True) if v is not None
    ]
    return {
        "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in pairs),
        "last": (round(pairs[-1][0], 1), round(pairs[-1][1], 1)) if pairs else None,
        "top": top_value,
        "latest": next((v for v in reversed(values) if v is not None), None),
    }


def history(samples, mem_total=None, width=WIDTH, height=HEIGHT):
    """The host history chart from monitor samples (oldest first); None when there are none.

    Free memory is drawn against the host's memory (left axis), the VM count against a whole
    number of VMs (right axis); x is time, so a gap in the samples shows as a longer segment.
    """
    if not samples:
        return None
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    xs = _xs([s["ts"] for s in samples], left, right)
    free = [s["free_mem"] for s in samples]
    counts = [s["vm_count"] for s in samples]
    mem_top = max([mem_total or 0] + [v for v in free if v is not None]) or 1
    vm_top = max([1] + [v for v in counts if v is not None])
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": right,
        "top": top,
        "bottom": bottom,
        "middle": (top + bottom) / 2,
        "mem": series(xs, free, mem_top, top, bottom),
        "vms": series(xs, counts, vm_top, top, bottom),
        "start": _short(samples[0]["ts"]),
        "end": _short(samples[-1]["ts"]),
        "count": len(samples),
    }


def host_history(host):
    """The history chart of a host (a dict with id and mem) from the monitor's samples."""
    return history(monitor.samples(host["id"]), host.get("mem"))
