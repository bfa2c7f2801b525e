"""Pictures: usage bars and the host history chart (points computed on the server, inline SVG)."""

import re

import pytest

from app import core
from app.db import get_db
from app.repositories import monitor as monitor_repo
from app.services import charts


def _sample(ts, free_mem, vm_count, running=0):
    return {"ts": ts, "free_mem": free_mem, "vm_count": vm_count, "running": running}


def _points(text):
    return [tuple(float(v) for v in pair.split(",")) for pair in text.split()]


@pytest.mark.parametrize(
    ("used", "total", "percent", "width", "colour"),
    [
        (0, 4096, 0, 0, "primary"),
        (1024, 4096, 25, 25, "primary"),
        (3686, 4096, 90, 90, "warning"),
        (4096, 4096, 100, 100, "warning"),
        (6144, 4096, 150, 100, "danger"),  # overcommitted: full red bar, the real figure shown
        (None, 8, 0, 0, "primary"),
    ],
)
def test_usage_bars(used, total, percent, width, colour):
    bar = charts.usage(used, total)
    assert (bar["percent"], bar["width"], bar["colour"]) == (percent, width, colour)


def test_usage_with_unknown_capacity():
    bar = charts.usage(512, None)
    assert bar["percent"] is None and bar["width"] == 0 and bar["colour"] == "secondary"


def test_no_samples_no_chart():
    assert charts.history([], 4096) is None


def test_points_scale_to_the_plot_box():
    samples = [
        _sample("2025-01-01T10:00:00.000000Z", 0, 0),
        _sample("2025-01-01T10:00:30.000000Z", 2048, 1),
        _sample("2025-01-01T10:01:00.000000Z", 4096, 2),
    ]
    chart = charts.history(samples, mem_total=4096, width=300, height=120)
    left, right, top, bottom = chart["left"], chart["right"], chart["top"], chart["bottom"]
    assert (left, right) == (charts.MARGIN_LEFT, 300 - charts.MARGIN_RIGHT)
    assert (top, bottom) == (charts.MARGIN_TOP, 120 - charts.MARGIN_BOTTOM)
    middle_x, middle_y = (left + right) / 2, (top + bottom) / 2
    assert _points(chart["mem"]["points"]) == [(left, bottom), (middle_x, middle_y), (right, top)]
    assert _points(chart["vms"]["points"]) == [(left, bottom), (middle_x, middle_y), (right, top)]
    assert chart["mem"]["top"] == 4096 and chart["vms"]["top"] == 2
    assert chart["mem"]["last"] == (right, top) and chart["mem"]["latest"] == 4096
    assert chart["start"] == "01-01 10:00" and chart["end"] == "01-01 10:01"
    assert chart["count"] == 3


def test_x_follows_time_not_sample_index():
    samples = [
        _sample("2025-01-01T10:00:00Z", 100, 1),
        _sample("2025-01-01T10:00:10Z", 100, 1),
        _sample("2025-01-01T10:01:40Z", 100, 1),  # a gap: the monitor was down for a while
    ]
    chart = charts.history(samples, mem_total=200, width=64 + 100 + 48, height=100)
    xs = [x for x, _y in _points(chart["mem"]["points"])]
    assert xs == [64.0, 74.0, 164.0]
    assert {y for _x, y in _points(chart["mem"]["points"])} == {(12 + 70) / 2}


def test_free_memory_is_drawn_against_the_host_memory_and_clamped():
    samples = [_sample("2025-01-01T10:00:00Z", 1024, 0), _sample("2025-01-01T10:05:00Z", 3072, 0)]
    chart = charts.history(samples, mem_total=4096)
    ys = [y for _x, y in _points(chart["mem"]["points"])]
    height = chart["bottom"] - chart["top"]
    assert ys == pytest.approx([chart["bottom"] - height / 4, chart["bottom"] - 3 * height / 4])
    # memory not known yet: the biggest sample is the top; the VM axis is at least one VM
    chart = charts.history(samples, mem_total=None)
    assert chart["mem"]["top"] == 3072 and chart["vms"]["top"] == 1
    assert _points(chart["vms"]["points"])[0][1] == chart["bottom"]


def test_one_sample_is_a_point_at_the_newest_edge():
    chart = charts.history([_sample("2025-01-01T10:00:00Z", 512, 3)], mem_total=1024)
    assert _points(chart["mem"]["points"]) == [
        (chart["right"], (chart["top"] + chart["bottom"]) / 2)
    ]
    assert chart["mem"]["last"] == (chart["right"], (chart["top"] + chart["bottom"]) / 2)
    assert chart["vms"]["last"] == (chart["right"], chart["top"])
    assert chart["start"] == chart["end"] and chart["count"] == 1


def test_missing_free_memory_is_skipped():
    samples = [_sample("2025-01-01T10:00:00Z", None, 1), _sample("2025-01-01T10:01:00Z", 512, 1)]
    chart = charts.history(samples, mem_total=1024)
    assert len(_points(chart["mem"]["points"])) == 1
    assert len(_points(chart["vms"]["points"])) == 2
    none = charts.history([_sample("2025-01-01T10:00:00Z", None, 0)], mem_total=1024)
    assert none["mem"]["points"] == "" and none["mem"]["last"] is None


@pytest.fixture
def host_id(host):
    """The id of the shared ready host h1 (tests/conftest.py)."""
    return host["id"]


def test_host_page_without_samples_says_so(app, admin_client, host_id):
    page = admin_client.get(f"/hosts/{host_id}").get_data(as_text=True)
    interval = app.config["MONITOR_INTERVAL"]
    interval = int(interval) if interval == int(interval) else interval  # 30.0 reads "30"
    assert f"No samples yet: the monitor records one every {interval} seconds." in page
    assert "<svg" not in page


def test_host_page_draws_the_history_as_inline_svg(app, admin_client, host_id, image):
    with app.app_context():
        core.addVm({"id": "vm1", "image": image, "mem": 64, "vcpus": 2, "host": "h1"})
        host = core.listHosts()[0]
        conn = get_db()
        for free, count in ((host["mem"] - 64, 1), (host["mem"] - 128, 2), (host["mem"] - 64, 1)):
            monitor_repo.add_sample(conn, host_id, free, count, 0)
    page = admin_client.get(f"/hosts/{host_id}").get_data(as_text=True)
    svg = re.search(r"<svg[^>]*>(.*?)</svg>", page, re.S)
    assert svg, "no chart"
    body = svg.group(1)
    assert "<title" in body
    mem_points = re.search(r'<polyline class="chart-mem" points="([^"]+)"', body).group(1)
    vms_points = re.search(r'<polyline class="chart-vms" points="([^"]+)"', body).group(1)
    assert len(_points(mem_points)) == 3 and len(_points(vms_points)) == 3
    assert "2 VMs" in body  # the right axis' top label
    assert "No samples yet" not in page
    assert "3 samples" in page
    assert "<script" not in body
    # the capacity bars next to it: memory and vCPUs allocated
    assert re.search(r"64 MiB allocated of [\d.]+ GiB \(\d+%\)", page)
    assert re.search(rf"2 vCPUs allocated of {host['cpus']} CPUs \(\d+%\)", page)


def test_overcommitted_host_shows_a_red_bar(app, admin_client, host_id, image):
    app.config["MEM_OVERCOMMIT"] = 100.0
    with app.app_context():
        host = core.listHosts()[0]
        core.addVm({"id": "big", "image": image, "mem": host["mem"] * 2, "host": "h1"})
    row = re.search(
        rf'<tr data-host-id="{host_id}">(.*?)</tr>',
        admin_client.get("/hosts/").get_data(as_text=True),
        re.S,
    ).group(1)
    assert 'class="progress-bar bg-danger" style="width: 100%"' in row
    assert "(200%)" in row
    overview = admin_client.get("/").get_data(as_text=True)
    assert 'class="progress-bar bg-danger" style="width: 100%"' in overview


@pytest.mark.parametrize(
    ("status", "done", "total", "cancel", "expected"),
    [
        ("pending", 0, 0, False, {"percent": 100, "text": "waiting for a worker"}),
        ("running", 0, 0, False, {"percent": 100, "text": "working"}),  # a build, a host add
        ("running", 0, 0, True, {"percent": 100, "text": "canceling"}),
        ("running", 2, 8, True, {"percent": 25, "text": "2 of 8 tasks, canceling"}),
        ("canceled", 2, 8, True, {"percent": 25, "text": "2 of 8 tasks"}),  # where it stopped
        ("failed", 3, 4, False, {"percent": 75, "text": "3 of 4 tasks"}),
        ("failed", 0, 0, False, {"percent": 100, "text": ""}),
    ],
)
def test_progress_words_say_what_an_operation_waits_for(status, done, total, cancel, expected):
    op = {
        "status": status,
        "progress_done": done,
        "progress_total": total,
        "cancel_requested": int(cancel),  # as the database has it
    }
    assert charts.operation_progress(op) == expected
