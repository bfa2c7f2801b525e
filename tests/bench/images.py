"""Images: import throughput of a ~512 MiB qcow2 from a local HTTP server on 127.0.0.1 (Python's
http.server in its own process) through Nube's fetch adapter (every check, SHA-256 while it
streams, written to a file) beside `curl -o` to a file from the same server; and the whole
core.importImage (the adapter, then qemu-img's checks and the publish) for reference. Runs
alternate between the two so that the page cache treats them alike; medians are reported."""

import ipaddress
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app import core, create_app
from app.adapters.image_fetch import ImageFetcher
from tests.wait import wait_for

SIZE_MIB = 512
RUNS = 5
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


def _free_port():
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port):
    """Whether something accepts connections on the port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _make_image(folder):
    """A qcow2 of SIZE_MIB of random data (nothing to compress or skip); its path."""
    raw = folder / "data.raw"
    with open(raw, "wb") as out:
        for _ in range(SIZE_MIB):
            out.write(os.urandom(1 << 20))
    image = folder / "serve" / "bench.qcow2"
    image.parent.mkdir()
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(image)], check=True)
    raw.unlink()
    return image


def _nube_fetch(url, out, cap):
    """Seconds the fetch adapter takes to stream url into out."""
    fetcher = ImageFetcher(allow=LOOPBACK)
    started = time.perf_counter()
    with open(out, "wb") as handle:
        fetcher.fetch(url, handle, cap, log=lambda line: None)
    return time.perf_counter() - started


def _curl(url, out):
    """Seconds `curl -o` takes to fetch url into out."""
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(out), url], check=True)
    return time.perf_counter() - started


def _import(folder, url, run):
    """Seconds core.importImage takes (fetch, checks, publish) into a fresh repository."""
    app = create_app(
        {
            "INSTANCE_PATH": str(folder / f"instance{run}"),
            "DATABASE": str(folder / f"nube{run}.sqlite"),
            "REPOSITORY": str(folder / f"iaas{run}"),
            "LIBVIRT_URI": "test:///default",
            "PROVISIONER": "recording",
            "QUEUE": "immediate",
            "SECRET_KEY": "bench",
            "IMAGE_IMPORT_ALLOW": "127.0.0.0/8",
        }
    )
    with app.app_context():
        app.extensions["nube"].storage.ensure_layout()
        started = time.perf_counter()
        core.importImage({"name": "bench", "url": url})
        seconds = time.perf_counter() - started
    shutil.rmtree(folder / f"iaas{run}")
    return seconds


def _rate(size, seconds):
    """MB/s (10^6 bytes per second)."""
    return round(size / seconds / 1e6, 1)


def main():
    """The figures: MB/s of Nube's fetch adapter, of curl, their ratio, and core.importImage."""
    with tempfile.TemporaryDirectory(prefix="nube-bench-images-", dir="/tmp") as tmp:
        folder = Path(tmp)
        image = _make_image(folder)
        size = image.stat().st_size
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
            cwd=image.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: _answers(port), timeout=30)
            url = f"http://127.0.0.1:{port}/{image.name}"
            cap = 2 * size
            nube, curl, whole = [], [], []
            for run in range(RUNS):
                out = folder / "out"
                nube.append(_nube_fetch(url, out, cap))
                out.unlink()
                curl.append(_curl(url, out))
                out.unlink()
                whole.append(_import(folder, url, run))
        finally:
            server.terminate()
            server.wait(timeout=30)
    nube_s, curl_s, whole_s = (statistics.median(times) for times in (nube, curl, whole))
    return {
        "file_mib": round(size / (1 << 20), 1),
        "runs": RUNS,
        "nube_fetch_mb_s": _rate(size, nube_s),
        "curl_mb_s": _rate(size, curl_s),
        "nube_over_curl": round(_rate(size, nube_s) / _rate(size, curl_s), 2),
        "core_import_mb_s": _rate(size, whole_s),
        "nube_fetch_s": round(nube_s, 3),
        "curl_s": round(curl_s, 3),
        "core_import_s": round(whole_s, 3),
    }
