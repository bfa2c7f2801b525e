"""Moving a domain between two hosts with libvirt: live (the guest keeps running), or its
persistent definition only (a stopped VM). Disks stay where they are: the repository is
shared, so only memory and the definition travel."""

import contextlib
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import libvirt

from app.addresses import check_address, uri_host
from app.errors import OperationCanceled, OperationFailed

POLL_SECONDS = 1.0
_LIVE_FLAGS = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
)


@dataclass
class JobProgress:
    """Where a migration job is, from the source's job statistics (MiB, MiB/s, seconds)."""

    elapsed: float
    memory_total: int
    memory_remaining: int
    rate: float

    def describe(self):
        """One log line."""
        return (
            f"{self.elapsed:.1f}s: {self.memory_remaining} of {self.memory_total} MiB of memory"
            f" left, {self.rate:.1f} MiB/s"
        )


def job_progress(stats: dict) -> JobProgress | None:
    """A running job's progress from virDomainGetJobStats' answer; None when no job runs."""
    if not stats or stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
        return None
    mib = 1 << 20
    return JobProgress(
        elapsed=stats.get("time_elapsed", 0) / 1000,
        memory_total=int(stats.get("memory_total", 0) // mib),
        memory_remaining=int(stats.get("memory_remaining", 0) // mib),
        rate=stats.get("memory_bps", 0) / mib,
    )


def migrate_params(dst, xml, bandwidth=0) -> dict:
    """virDomainMigrate3's parameters: QEMU on dst listens on its data address only and the
    stream goes there; the guest runs and is persisted there with Nube's XML."""
    data_address = check_address(dst.get("data_address") or dst["address"])
    params = {
        libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{uri_host(data_address)}",
        libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: data_address,
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: xml,
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: xml,
    }
    if bandwidth:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(bandwidth)
    return params


def _wait(future, seconds):
    """Whether the future finished within seconds."""
    try:
        future.exception(timeout=seconds)
    except FutureTimeout:
        return False
    return True


class Migrator:
    """Runs migrations for the hypervisor adapter: the long call on connections of its own
    (so cached connections stay free for the monitor and the job statistics)."""

    def __init__(self, hypervisor, poll=POLL_SECONDS):
        self.hypervisor = hypervisor
        self.poll = poll

    def live(self, src, dst, name, xml, *, unsafe, report, should_stop, timeout, bandwidth=0):
        """Migrate a running domain from src to dst, where it runs and is persisted with xml
        (Nube's rendering: libvirt refuses it when the running guest does not match), and
        undefine it on src. report(JobProgress) is called every poll; should_stop() aborts
        the job (the guest keeps running on src) and raises OperationCanceled; so does the
        timeout."""
        flags = _LIVE_FLAGS | (libvirt.VIR_MIGRATE_UNSAFE if unsafe else 0)
        done = self._start(src, dst, name, migrate_params(dst, xml, bandwidth), flags)
        deadline = time.monotonic() + timeout
        stopping = None
        while not _wait(done, self.poll):
            if stopping is None and (should_stop() or time.monotonic() > deadline):
                stopping = "timed out" if time.monotonic() > deadline else "canceled"
                self.hypervisor.abort_job(src, name)
            progress = None if stopping else self._progress(src, name)
            if progress:
                report(progress)
        exc = done.exception()
        if stopping:
            if exc is None:  # it finished before the abort took: it did move
                return
            raise OperationCanceled(f"migration {stopping}: {name} stays on {src['name']}")
        if exc is not None:
            message = exc.get_error_message() if isinstance(exc, libvirt.libvirtError) else exc
            raise OperationFailed(
                f"migrating {name} to {dst['name']} failed: {message}; it stays on {src['name']}"
            ) from exc

    def _progress(self, src, name):
        """The job's progress, or None (no job yet, or the source did not answer in time)."""
        try:
            return job_progress(self.hypervisor.job_stats(src, name))
        except Exception:  # progress is a courtesy: the migration itself decides
            return None

    def _start(self, src, dst, name, params, flags) -> Future:
        """Run virDomainMigrate3 in its own thread on fresh connections; its outcome."""
        done = Future()
        src_uri, dst_uri = self.hypervisor.uri_for(src), self.hypervisor.uri_for(dst)

        def body():
            conns = []
            try:
                conns = [libvirt.open(src_uri), libvirt.open(dst_uri)]
                conns[0].lookupByName(name).migrate3(conns[1], params, flags)
                done.set_result(None)
            except BaseException as exc:  # handed to the waiting operation
                done.set_exception(exc)
            finally:
                for conn in conns:
                    with contextlib.suppress(libvirt.libvirtError):
                        conn.close()

        threading.Thread(target=body, name=f"migrate-{name}", daemon=True).start()
        return done

    def offline(self, src, dst, name, xml):
        """Move a stopped domain from src to dst: defined there with xml (Nube's rendering,
        never the source's definition), then undefined on src."""
        self.hypervisor.define(dst, xml)
        self.hypervisor.undefine(src, name)
