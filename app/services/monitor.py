"""The monitor: reads every host in parallel and makes the database say what libvirt says."""

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from .. import states
from ..db import connect, now, transaction
from ..errors import NubeError
from ..extensions import adapters
from ..numbers import disk_gib
from ..repositories import hosts as hosts_repo
from ..repositories import monitor as monitor_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo
from ..states import vm_state
from . import shared_keys
from .common import db

log = logging.getLogger(__name__)

# Hosts in these states are polled; preparing/removing ones belong to their operation.
POLLED_STATES = states.HOST_POLLED
MAX_PARALLEL = 32


@dataclass
class HostReading:
    """What one host said (or why it said nothing)."""

    host: dict
    started: str = ""  # when the reading began: anything recorded after it is newer
    info: object = None
    domains: dict | None = None
    error: str | None = None
    began: float | None = None  # when the reading began (epoch seconds)
    answered: float | None = None  # when the host last answered anything (epoch seconds)


def _read(hypervisor, host):
    """One host's capacity and domains; each call bounded by the adapter's timeout."""
    started, began = now(), time.time()
    try:
        info = hypervisor.host_info(host, capabilities=False)  # KVM is a preparation fact
        domains = hypervisor.list_domains(host)
    except NubeError as exc:
        answered = hypervisor.last_answer(host)
        return HostReading(host, started, error=str(exc), began=began, answered=answered)
    except Exception as exc:  # one host's surprise must not stop the pass
        log.exception("monitor: reading %s failed", host["name"])
        return HostReading(host, started, error=f"{exc.__class__.__name__}: {exc}")
    return HostReading(host, started, info, domains)


def poll(app):
    """One monitor pass over every polled host; returns {host name: 'ok' | error}."""
    silence = Silence(app.config["MONITOR_MISSES"])
    conn = connect(app.config["DATABASE"])
    try:
        shared_keys.sync_known_hosts(app, conn)  # host keys another controller recorded
        measure_old_disks(app, conn)
        check_volume_files(app, conn)
        hosts = [dict(h) for h in hosts_repo.search(conn) if h["state"] in POLLED_STATES]
        if not hosts:
            return {}
        hypervisor = adapters(app).hypervisor
        outcome = {}
        # Each reading is applied as soon as it arrives, so a hung host never delays the rest.
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(hosts))) as pool:
            futures = [pool.submit(_read, hypervisor, host) for host in hosts]
            for future in as_completed(futures):
                reading = future.result()
                _apply(conn, reading, silence)
                outcome[reading.host["name"]] = reading.error or "ok"
        return outcome
    finally:
        conn.close()


def measure_old_disks(app, conn):
    """Record the disk size of VMs made before sizes were recorded (the disk quota counts
    them): their base image's virtual size, as every new VM's is recorded at creation."""
    storage = adapters(app).storage
    for row in vms_repo.without_disk_size(conn):
        try:
            size = storage.image_info(row["image"]).virtual_size
        except NubeError as exc:  # an image gone or unreadable: tried again next pass
            log.warning("monitor: cannot measure VM %s's disk: %s", row["id"], exc)
            continue
        with transaction(conn):
            vms_repo.set_disk_size(conn, row["id"], disk_gib(size))


def check_volume_files(app, conn):
    """Say which volumes' files are missing from the repository (and which came back): a
    volume no operation holds is missing without its file, and found again with it."""
    storage = adapters(app).storage
    for row in volumes_repo.idle(conn):
        there = storage.volume_exists(row["id"])
        if not there and row["state"] != states.MISSING:
            log.warning("monitor: volumes/%s.qcow2 is missing", row["id"])
            found = states.MISSING
        elif there and row["state"] == states.MISSING:
            found = states.IN_USE if row["vm_id"] else states.AVAILABLE
        else:
            continue
        with transaction(conn):
            volumes_repo.set_state_if(conn, row["id"], row["state"], found)


@dataclass(frozen=True)
class Silence:
    """When a host that does not answer the monitor counts as silent: after `misses` readings
    in a row, and only if it answered nothing since the first of them, not even late (a call
    whose caller gave up that still came back): a slow host answers, a dead one does not."""

    misses: int = 1

    def reached(self, count, missing_since, answered):
        """Whether `count` missed readings since `missing_since`, with the host's last answer
        at `answered` (epoch seconds, or None), make a silent host."""
        if count < self.misses:
            return False
        return answered is None or missing_since is None or answered < missing_since


def _apply(conn, reading, silence=Silence()):
    """Write one host's reading: capacity, VM states, drift. A host that does not answer is
    unreachable (and its VMs unknown) only once it is silent (Silence): one slow answer from a
    busy host is not a dead host."""
    host = reading.host
    with transaction(conn):
        current = hosts_repo.get(conn, host["id"])
        if current is None or current["state"] not in POLLED_STATES:
            return  # removed or taken by an operation while we were reading
        vms = vms_repo.on_host(conn, host["id"])
        if reading.error:
            _missed(conn, current, vms, reading, silence)
            return
        info = reading.info
        changes = {
            "cpus": info.cpus,
            "mem": info.mem,
            "free_mem": info.free_mem,
            "last_seen": now(),
            "misses": 0,
            "missing_since": None,
        }
        if current["state"] == "unreachable":
            changes.update(state="ready", error=None)
        hosts_repo.update(conn, host["id"], **changes)
        _apply_domains(conn, host["id"], vms, reading.domains, reading.started)
        running = sum(1 for d in reading.domains.values() if vm_state(d.state) == "running")
        monitor_repo.add_sample(conn, host["id"], info.free_mem, len(vms), running)


def _missed(conn, host, vms, reading, silence):
    """Count a missed reading; once the host is silent (Silence) it is unreachable and its VMs
    unknown. A busy host that answers late is slow, not gone: it stays as it is."""
    count = (host["misses"] or 0) + 1
    since = host["missing_since"] if count > 1 else reading.began
    hosts_repo.update(conn, host["id"], misses=count, missing_since=since)
    if not silence.reached(count, since, reading.answered):
        log.info("monitor: %s missed reading %d: %s", host["name"], count, reading.error)
        return
    if host["state"] == "ready":
        hosts_repo.update(conn, host["id"], state="unreachable", error=reading.error)
    for vm in vms:
        if not vm["task"]:
            vms_repo.set_state(conn, vm["id"], "unknown", seen=False)


def _apply_domains(conn, host_id, vms, domains, started):
    """Set each VM's state from its domain; report domains and VMs that do not match."""
    found = set()
    known = set()
    for vm in vms:
        known.add(vm["id"])
        if vm["task"] or (vm["last_seen"] or "") > started:
            # an operation owns this VM, or recorded its state after this reading began
            continue
        domain = domains.get(vm["id"])
        if domain is None:
            monitor_repo.note_drift(conn, host_id, "missing_domain", vm["id"])
            found.add(("missing_domain", vm["id"]))
            vms_repo.set_state(conn, vm["id"], "error", seen=False)
        else:
            vms_repo.set_state(conn, vm["id"], vm_state(domain.state))
    busy = vms_repo.busy_ids(conn)  # a migrating VM's domain is on two hosts for a while
    for name in domains:
        if name not in known and name not in busy:
            monitor_repo.note_drift(conn, host_id, "unknown_domain", name)
            found.add(("unknown_domain", name))
    monitor_repo.clear_drift(conn, host_id, found)


def samples(host_id):
    """A host's capacity samples, oldest first."""
    return [dict(row) for row in monitor_repo.samples(db(), host_id)]
