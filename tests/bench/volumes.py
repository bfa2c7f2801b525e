"""Volumes: creation through core.addVolume (empty, and from a qcow2 image as an overlay or a
copy) at 1 and 20 GiB beside the same qemu-img commands alone, and the hot-plug of a volume
into a running VM on a lab host through core.attachVolume beside libvirt's attachDeviceFlags
alone (the same flags, live and persistent, and the same <disk> element) on the same host.

Hot-plug: two running VMs on one lab host (blank disks: SeaBIOS finds nothing to boot and
waits, which is all a hot-plug needs), one for Nube and one for libvirt alone, so that neither
sees the other's devices (Nube refuses a VM whose live definition has a disk it never gave it).
A guest without an OS never answers an unplug request, so each round attaches a fresh volume
at the next target, and between batches both VMs are forced off (the Nube VM's volumes then
detach by redefinition) and started again: a batch's attaches find the VM with 0, 1, 2...
volumes, as a VM has in use. Cleanups and resets are outside the timings."""

import shutil
import statistics
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

import libvirt

from app import core, create_app
from app.domain_xml import VOLUME_TARGETS, render_volume_disk
from app.services import volumes as volumes_service
from tests.factories import make_image
from tests.integration.conftest import lab_controller
from tests.lab import lab

SIZES = (1, 20)  # GiB
SOURCES = ("empty", "overlay", "copy")
CREATE_RUNS = 7
# a 1 GiB qcow2 made with qemu-img, empty: volumes from it are 1 GiB or more, and its copy
# costs little (the cluster section measures copies of data-filled images)
IMAGE = "base.qcow2"
VM_IMAGE = "blank.qcow2"
BATCHES = 4
ROUNDS = 5  # attaches per batch and side (targets vdb... of a fresh VM)
FACTOR = 1.5  # the issue: Nube's hot-plug within 1.5x libvirt's attach alone
NUBE_VM, LIBVIRT_VM = "hp-nube", "hp-libvirt"
HYPERVISOR_CALLS = ("domain_state", "definition", "disk_targets", "hot_plug", "define")


class Breakdown:
    """Where a timed call spends its time: wrappers on the adapters' methods add up the
    seconds of each (the outermost wrapped call only, so nothing counts twice), apart for the
    request (before the operation runs) and the operation's run (launch: the worker's part)."""

    def __init__(self):
        self.seconds, self.calls, self._depth, self._phase = {}, {}, 0, "request"

    def reset(self):
        """Start a new timed call."""
        self.seconds, self.calls = {}, {}

    def _add(self, label, seconds):
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds
        self.calls[label] = self.calls.get(label, 0) + 1

    def _wrap(self, label_of, call):
        def timed(*args, **kwargs):
            if self._depth:
                return call(*args, **kwargs)
            self._depth += 1
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self._add(f"{self._phase}: {label_of(args)}", time.perf_counter() - started)
                self._depth -= 1

        return timed

    def _launch(self, launch):
        """launch, timed as the operation's run; calls inside it count under "run: "."""

        def timed(*args, **kwargs):
            self._phase = "run"
            started = time.perf_counter()
            try:
                return launch(*args, **kwargs)
            finally:
                self._add("run", time.perf_counter() - started)
                self._phase = "request"

        return timed

    @contextmanager
    def watching(self, app, hypervisor_calls=HYPERVISOR_CALLS):
        """Wrap the app's qemu-img runs (by subcommand), the named hypervisor calls and the
        volumes service's launch while the block runs."""
        adapters = app.extensions["nube"]
        qemu_img, hypervisor = adapters.storage.qemu_img, adapters.hypervisor
        qemu_img.run = self._wrap(lambda args: f"qemu-img {args[0][0]}", qemu_img.run)
        for name in hypervisor_calls:
            method = getattr(hypervisor, name)
            setattr(hypervisor, name, self._wrap(lambda args, n=name: f"libvirt {n}", method))
        launch = volumes_service.launch
        volumes_service.launch = self._launch(launch)
        try:
            yield self
        finally:
            volumes_service.launch = launch
            del qemu_img.run
            for name in hypervisor_calls:
                delattr(hypervisor, name)

    def row(self, total):
        """The timed call's seconds by label, with what the wrapped calls leave in each phase
        (request: validation, the operation's row, claims; run: SQLite, rendering, threads)."""
        row = {**self.seconds, "total": total, "request": total - self.seconds.get("run", 0.0)}
        for phase in ("request", "run"):
            calls = sum(s for label, s in self.seconds.items() if label.startswith(f"{phase}: "))
            row[f"{phase}: other"] = row.get(phase, 0.0) - calls
        return row


def _ms(seconds):
    """Seconds as rounded milliseconds."""
    return round(seconds * 1000, 1)


def _stats(times):
    """Median and max of timings, in ms."""
    return {"median_ms": _ms(statistics.median(times)), "max_ms": _ms(max(times))}


def _median_breakdown(rows):
    """{label: median ms over the runs (0 where a run did not make the call)}."""
    labels = sorted({label for row in rows for label in row})
    return {label: _ms(statistics.median(row.get(label, 0.0) for row in rows)) for label in labels}


def _qemu_img_steps(storage, source, gib, out):
    """The qemu-img command lines Nube runs to make a volume (VolumeFiles.create_volume)."""
    size = f"{gib}G"
    if source == "empty":
        return [["create", "-f", "qcow2", "--", str(out), size]]
    if source == "overlay":
        return [
            [
                "create",
                "-f",
                "qcow2",
                "-F",
                "qcow2",
                "-b",
                f"../images/{IMAGE}",
                "--",
                str(out),
                size,
            ]
        ]
    base = str(storage.image_path(IMAGE))
    return [
        ["convert", "-f", "qcow2", "-O", "qcow2", "--", base, str(out)],
        ["resize", "-f", "qcow2", "--", str(out), size],
    ]


def _qemu_img_alone(storage, source, gib):
    """Seconds of the qemu-img commands alone, in the same staging folder Nube uses."""
    out = storage.staging_dir() / "bench-alone.qcow2"
    steps = _qemu_img_steps(storage, source, gib, out)
    started = time.perf_counter()
    for args in steps:
        subprocess.run(["qemu-img", *args], check=True, capture_output=True)
    seconds = time.perf_counter() - started
    out.unlink()
    return seconds


def _add_volume(app, breakdown, name, source, gib):
    """Seconds of one core.addVolume, and where they went."""
    app.extensions["nube"].storage.disk_mode = "copy" if source == "copy" else "overlay"
    volume = {"name": name, "size": gib}
    if source != "empty":
        volume["image"] = IMAGE
    breakdown.reset()
    started = time.perf_counter()
    core.addVolume(volume)
    seconds = time.perf_counter() - started
    return seconds, breakdown.row(seconds), dict(breakdown.calls)


def creation():
    """{"<gib>GiB_<source>": Nube's and qemu-img's timings, Nube's breakdown} on a controller
    with a real repository (libvirt's test driver: creation touches no host)."""
    top = Path(tempfile.mkdtemp(prefix="nube-bench-volumes-", dir="/var/tmp"))
    try:
        app = create_app(
            {
                "INSTANCE_PATH": str(top / "instance"),
                "DATABASE": str(top / "nube.sqlite"),
                "REPOSITORY": str(top / "iaas"),
                "QUEUE": "immediate",
                "PROVISIONER": "recording",
                "LIBVIRT_URI": "test:///default",
                "CONTROLLER_PREPARE": False,
                "SECRET_KEY": "x",
            }
        )
        figures, breakdown = {}, Breakdown()
        with app.app_context():
            core.init()
            storage = app.extensions["nube"].storage
            make_image(storage.images_dir / IMAGE, size="1G", fmt="qcow2")
            core.addVolume({"name": "warmup", "size": 1})  # imports, first queries
            core.removeVolume("warmup")
            with breakdown.watching(app, hypervisor_calls=()):
                for gib in SIZES:
                    for source in SOURCES:
                        figures[f"{gib}GiB_{source}"] = _creation_row(app, breakdown, source, gib)
        app.extensions["nube"].hypervisor.close()
        return figures
    finally:
        subprocess.run(["rm", "-rf", str(top)], check=False)


def _creation_row(app, breakdown, source, gib):
    """Timings of one size and source: Nube's runs interleaved with qemu-img's alone."""
    storage = app.extensions["nube"].storage
    nube, alone, parts = [], [], []
    for n in range(CREATE_RUNS):
        name = f"v-{source}-{gib}-{n}"
        seconds, part, calls = _add_volume(app, breakdown, name, source, gib)
        nube.append(seconds)
        parts.append(part)
        core.removeVolume(name)
        alone.append(_qemu_img_alone(storage, source, gib))
    return {
        "runs": CREATE_RUNS,
        "nube": _stats(nube),
        "qemu_img_alone": _stats(alone),
        "nube_adds_ms": _ms(statistics.median(nube) - statistics.median(alone)),
        "nube_breakdown_ms": _median_breakdown(parts),
        "nube_calls_last_run": dict(sorted(calls.items())),
    }


# --- hot-plug ---------------------------------------------------------------------------


# the same change Nube's hot-plug makes: into the running domain and its persistent definition
ATTACH_FLAGS = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG


def _libvirt_attach(conn, vm, xml):
    """Seconds of attachDeviceFlags(xml, LIVE | CONFIG) on a running domain: the libvirt call
    Nube's hot-plug makes, alone."""
    dom = conn.lookupByName(vm)
    started = time.perf_counter()
    dom.attachDeviceFlags(xml, ATTACH_FLAGS)
    return time.perf_counter() - started


def _disk_xml(app, name, target):
    """The <disk> element Nube hands libvirt for an empty volume (definition.volume_disk)."""
    mount = app.config["HOST_MOUNT"].rstrip("/")
    disk = {
        "path": f"{mount}/volumes/{name}.qcow2",
        "backing": [],
        "target": target,
        "serial": name,
    }
    return render_volume_disk(disk, app.config["DOMAIN_TEMPLATES"])


def _reset(conn, vms, attached):
    """Both VMs forced off, the Nube VM's volumes detached by redefinition and the libvirt
    VM's disks taken out of its persistent definition, both started again."""
    for vm in vms:
        core.stopVm(vm, force=True)
    for name in attached:
        core.detachVolume(name)
    dom = conn.lookupByName(LIBVIRT_VM)
    for disk in ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).findall(
        "devices/disk[@device='disk']"
    ):
        if disk.find("target").get("dev") != "vda":
            dom.detachDeviceFlags(
                ET.tostring(disk, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_CONFIG
            )
    for vm in vms:
        core.startVm(vm)


def _round(app, conn, breakdown, number, target):
    """One attach each way, each of a fresh empty volume: (Nube's seconds, libvirt's alone,
    Nube's breakdown, its calls)."""
    ours, theirs = f"n{number}", f"l{number}"
    core.addVolume({"name": ours, "size": 1})
    core.addVolume({"name": theirs, "size": 1})
    breakdown.reset()
    started = time.perf_counter()
    core.attachVolume(ours, NUBE_VM)
    seconds = time.perf_counter() - started
    row, calls = breakdown.row(seconds), dict(breakdown.calls)
    alone = _libvirt_attach(conn, LIBVIRT_VM, _disk_xml(app, theirs, target))
    return seconds, alone, row, calls


def _batches(app, conn, breakdown, batches, rounds):
    """batches x rounds attaches each way, interleaved, each batch on freshly started VMs:
    [[(Nube's seconds, libvirt's, breakdown, calls) per round] per batch]."""
    done, number = [], len(core.listVolumes())
    for _ in range(batches):
        batch = []
        for target in VOLUME_TARGETS[:rounds]:
            number += 1
            batch.append(_round(app, conn, breakdown, number, target))
        done.append(batch)
        _reset(
            conn, (NUBE_VM, LIBVIRT_VM), [f"n{n}" for n in range(number - rounds + 1, number + 1)]
        )
    return done


def _figures(batches):
    """Medians, maxima and the ratio of a set of batches."""
    rounds = [one for batch in batches for one in batch]
    nube, alone = [one[0] for one in rounds], [one[1] for one in rounds]
    ratio = statistics.median(nube) / statistics.median(alone)
    # what the ratio would be without the headers' reading (qemu-img info, one process each)
    unchecked = [one[0] - one[2].get("run: qemu-img info", 0.0) for one in rounds]
    return {
        "rounds": len(rounds),
        "nube_attach": _stats(nube),
        "libvirt_attach_alone": _stats(alone),
        "nube_over_libvirt": round(ratio, 2),
        "within_factor": ratio <= FACTOR,
        "nube_less_qemu_img_info_over_libvirt": round(
            statistics.median(unchecked) / statistics.median(alone), 2
        ),
        "nube_breakdown_ms": _median_breakdown([one[2] for one in rounds]),
        "nube_calls_last_round": dict(sorted(rounds[-1][3].items())),
    }


def _by_position(batch):
    """Nube's and libvirt's attach ms by how many volumes the VM had already."""
    return {
        "already_attached": list(range(len(batch))),
        "nube_ms": [_ms(one[0]) for one in batch],
        "libvirt_alone_ms": [_ms(one[1]) for one in batch],
        "nube_qemu_img_info_calls": [one[3].get("run: qemu-img info", 0) for one in batch],
    }


def _domain_type(conn, vm):
    """The type of a running domain (kvm, or qemu for TCG)."""
    return ET.fromstring(conn.lookupByName(vm).XMLDesc(0)).get("type")


def lab_setup(host, top, vms, image=VM_IMAGE):
    """The controller initialised, a blank image, the lab host registered as lab1, and vms
    running on it (blank disks: SeaBIOS waits); the host's row."""
    core.init()
    make_image(top / "export" / "iaas" / "images" / image, size="256M", fmt="qcow2")
    added = core.addHost(
        {
            "address": host["address"],
            "user": host["user"],
            "password": host["password"],
            "name": "lab1",
            "share": "bind",
            "network": "none",
        }
    )
    for vm in vms:
        core.addVm({"id": vm, "image": image, "mem": 64, "host": "lab1", "start": True})
    return added


def hot_plug():
    """Nube's hot-plug beside libvirt's attach alone, on one lab host: BATCHES x ROUNDS
    (after a warm-up batch: connections, caches), then one batch to the last target."""
    [host] = lab.up(1)
    app, top = lab_controller("nube-bench-hotplug-")
    conn = None
    try:
        with app.app_context():
            added = lab_setup(host, top, (NUBE_VM, LIBVIRT_VM))
            conn = libvirt.open(app.extensions["nube"].hypervisor.uri_for(added))
            breakdown = Breakdown()
            with breakdown.watching(app):
                _batches(app, conn, breakdown, 1, ROUNDS)
                typical = _batches(app, conn, breakdown, BATCHES, ROUNDS)
                full = _batches(app, conn, breakdown, 1, len(VOLUME_TARGETS))
            virt = _domain_type(conn, NUBE_VM)
            core.destroy()
        return {
            "host": "lab host, libvirtd over qemu+ssh on loopback",
            "domain_type": virt,
            "batches": BATCHES,
            "factor": FACTOR,
            **_figures(typical),
            "up_to_last_target": _by_position(full[0]),
        }
    finally:
        if conn is not None:
            conn.close()
        app.extensions["nube"].hypervisor.close()
        lab.down()
        shutil.rmtree(top, ignore_errors=True)


def main():
    """Every volume figure."""
    return {"creation": creation(), "hot_plug": hot_plug()}
