"""libvirt adapter: one cached connection per host, a timeout on every call, mapped errors."""

import logging
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote

import libvirt

from app import states
from app.adapters.hypervisor_calls import HostAndGuestCalls
from app.adapters.hypervisor_devices import DiskCalls
from app.adapters.hypervisor_snapshots import SnapshotCalls
from app.addresses import check_address, check_ip, check_user, uri_host
from app.errors import HostUnreachable, InvalidInput, NotFound, NubeError, SlowCall

log = logging.getLogger(__name__)

# libvirt prints every error to stderr by default; we report them through exceptions instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

# Each call runs in its own daemon thread (an open in one more, shared by its waiters) and the
# caller waits with a timeout. Unlike a fixed pool, hung hosts never starve calls to healthy ones
# and stuck threads never block exit. Bounded: once _MAX_STUCK abandoned calls to a host still
# run, further calls to it fail at once (stuck threads end when the host or TCP gives up).
_MAX_STUCK = 4

_URI_FIELDS = ("id", "name", "address", "user")  # never the password a host row also carries
# A dead connection: these codes, or any error of the RPC layer (VIR_ERR_SYSTEM_ERROR included:
# "Cannot recv data"...). A VIR_ERR_SYSTEM_ERROR from elsewhere is a local failure on a live host.
_DEAD = {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_RPC}
# libvirt's domain states in the adapter's words (app/states.LIBVIRT_DOMAIN, the one table)
_STATES = {
    getattr(libvirt, f"VIR_DOMAIN_{name.upper()}"): word
    for name, word in states.LIBVIRT_DOMAIN.items()
}
_DOMAIN_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
)
_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)


class HypervisorError(NubeError):
    """libvirt refused or failed a request; the message is libvirt's."""


@dataclass
class HostInfo:
    """What a host offers (memory in MiB)."""

    cpus: int
    mem: int
    free_mem: int
    kvm: bool | None  # None when not asked for
    hostname: str


@dataclass
class DomainInfo:
    """One domain as libvirt sees it; state is running, stopped, paused or other."""

    name: str
    state: str
    mem: int  # MiB, maximum
    vcpus: int


@dataclass
class VncDisplay:
    """Where a running domain's VNC server listens, as seen from its host."""

    address: str
    port: int


class _Broken(Exception):
    """The cached connection is dead: drop it and retry once on a fresh one."""


class _Entry:
    """A connection (maybe still opening) to one URI; refs: the cache's plus one per running
    call."""

    def __init__(self, opening: Future, uri: str):
        self.opening, self.refs, self.uri = opening, 1, uri


class Hypervisor(HostAndGuestCalls, DiskCalls, SnapshotCalls):
    """Talks to the libvirt daemons of all hosts; one object shared by all threads."""

    def __init__(
        self,
        uri_template: str,
        keyfile: str = "",
        timeout: float = 10.0,
        known_hosts: str = "",
        call_timeout: float = 120.0,
        concurrency: int = 2,
    ):
        self.uri_template, self.keyfile, self.timeout = uri_template, keyfile, timeout
        self.known_hosts = known_hosts
        # Cheap calls (state, capacity, liveness) get `timeout`; heavy ones (define, start,
        # shut down, force off, undefine) get `call_timeout`, and at most `concurrency` of them
        # run at once on one host: a deploy storm queues per host instead of swamping it.
        self.call_timeout, self.concurrency = call_timeout, max(1, int(concurrency))
        self._lock = threading.Lock()  # guards the dicts below; never held during a libvirt call
        self._conns: dict[str, _Entry] = {}
        self._stuck: dict[str, int] = {}  # per URI: abandoned waits whose thread still runs
        self._slots: dict[str, threading.BoundedSemaphore] = {}  # per URI: heavy call slots
        # per URI: when the host last answered anything (epoch s), late answers to calls
        # whose caller gave up included: a slow host still answers, a dead one does not
        self._answered: dict[str, float] = {}

    def uri_for(self, host: dict) -> str:
        """The libvirt URI of a host (SSH key auth: a URI never carries a password)."""
        row = dict(host)  # a dict or an sqlite3.Row
        fields = {k: "" if row.get(k) is None else row[k] for k in _URI_FIELDS}
        # checked again here: the URI is parsed by libvirt, so nothing may read as syntax
        fields["address"] = uri_host(check_address(fields["address"]))
        fields["user"] = check_user(fields["user"])
        fields["keyfile"] = quote(self.keyfile, safe="/~._-")
        fields["known_hosts"] = quote(self.known_hosts, safe="/~._-")
        try:
            return self.uri_template.format(**fields)
        except (KeyError, IndexError) as exc:
            raise InvalidInput(f"cannot build a libvirt URI: no field {exc}") from None

    def host_info(self, host, capabilities=True) -> HostInfo:
        """CPUs, memory, free memory, KVM support and hostname of a host; the monitor passes
        capabilities=False to skip the large capabilities document (kvm is then None)."""

        def work(conn):
            _model, mem, cpus, *_ = conn.getInfo()
            kvm = None
            if capabilities:
                caps = ET.fromstring(conn.getCapabilities())
                kvm = any(d.get("type") == "kvm" for d in caps.iterfind("./guest/arch/domain"))
            free = conn.getFreeMemory() // (1024 * 1024)
            return HostInfo(cpus, mem, free, kvm, conn.getHostname())

        return self._run(host, work)

    def list_domains(self, host) -> dict[str, DomainInfo]:
        """All domains defined or running on a host, by name: one RPC for all their states."""

        def work(conn):
            stats = conn.getAllDomainStats(_DOMAIN_STATS)
            found = {}
            for dom, values in stats:
                name = dom.name()
                state = _STATES.get(values.get("state.state"), states.DOMAIN_OTHER)
                # balloon/vcpu stats exist for running QEMU domains; 0 means "not reported"
                mem = values.get("balloon.maximum", 0) // 1024
                found[name] = DomainInfo(name, state, mem, values.get("vcpu.maximum", 0))
            return found

        return self._run(host, work)

    def domain_state(self, host, name) -> str | None:
        """The state of one domain, or None when it does not exist."""
        try:
            return self._run(
                host, lambda c: _STATES.get(c.lookupByName(name).state()[0], states.DOMAIN_OTHER)
            )
        except NotFound:
            return None

    def domain_uuid(self, host, name) -> str | None:
        """The UUID of one domain, or None when it does not exist."""
        try:
            return self._run(host, lambda c: c.lookupByName(name).UUIDString())
        except NotFound:
            return None

    def define(self, host, xml: str) -> None:
        """Define (or redefine) a persistent domain from its XML."""
        self._run(host, lambda conn: conn.defineXML(xml), heavy="define")

    def undefine(self, host, name) -> None:
        """Remove a domain's definition with its managed save, snapshot metadata and NVRAM."""

        def work(conn):
            dom = conn.lookupByName(name)
            try:
                dom.undefineFlags(_UNDEFINE_FLAGS)
            except libvirt.libvirtError:  # some drivers reject some of the flags
                dom.undefine()

        self._run(host, work, name, heavy="undefine")

    def start(self, host, name) -> None:
        """Boot a domain; one already running is fine."""
        self._run(host, lambda conn: _ensure(conn.lookupByName(name), "create"), name, "start")

    def shutdown(self, host, name) -> None:
        """Ask the guest to power off (ACPI); one already stopped is fine."""
        self._run(host, lambda conn: _ensure(conn.lookupByName(name), "shutdown"), name, "shutdown")

    def force_off(self, host, name) -> None:
        """Power a domain off at once; one already stopped is fine."""
        self._run(host, lambda conn: _ensure(conn.lookupByName(name), "destroy"), name, "force off")

    def vnc_display(self, host, name) -> VncDisplay | None:
        """The VNC address and port of a running domain (live XML); None when it has none."""

        def work(conn):
            dom = conn.lookupByName(name)
            if not dom.isActive():
                return None
            graphics = ET.fromstring(dom.XMLDesc(0)).find("./devices/graphics[@type='vnc']")
            port = int(graphics.get("port", "-1")) if graphics is not None else -1
            if port <= 0:
                return None
            listen = graphics.get("listen") or "127.0.0.1"
            # A wildcard listen is reached on the host's loopback like any other.
            listen = "127.0.0.1" if listen in ("0.0.0.0", "::") else listen
            # the host wrote this XML: only an IP address goes on to the ssh tunnel
            return VncDisplay(check_ip(listen), port)

        return self._run(host, work, name)

    def close(self, host=None) -> None:
        """Drop the cached connection of one host, or of all; they close in the background."""
        only = None if host is None else self.uri_for(host)
        with self._lock:
            doomed = [(uri, entry) for uri, entry in self._conns.items() if only in (None, uri)]
        for uri, entry in doomed:
            self._drop(entry, uri)

    def _run(self, host, fn, name=None, heavy=None):
        """fn(conn) on the host's connection: timeout, one retry if it broke, mapped errors.
        A heavy call (heavy names it) waits for one of the host's slots and has call_timeout."""
        uri, label = self.uri_for(host), f"host {host['name']} ({host['address']})"
        timeout = self.call_timeout if heavy else self.timeout
        for attempt in range(2):
            entry, gave_up, work = self._call(uri, label, fn, heavy)
            try:
                return work.result(timeout=timeout)
            except TimeoutError:
                gave_up.set()  # a call still waiting for the open will not run late
                raise self._gave_up(uri, label, entry, work, heavy, name, timeout) from None
            except HostUnreachable:  # the open failed
                self._drop(entry, uri)  # the next call opens afresh
                raise
            except _Broken as exc:
                self._drop(entry, uri)
                if attempt:
                    raise HostUnreachable(f"{label} unreachable: {exc}") from None
                log.info("connection to host %s broke (%s); reconnecting", host["name"], exc)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    raise NotFound(f"domain {name} not found on host {host['name']}") from None
                message = exc.get_error_message() or str(exc)
                raise HypervisorError(f"libvirt error on host {host['name']}: {message}") from exc

    def _acquire(self, label, uri) -> _Entry:
        """A reference to the host's cached connection, starting to open one if there is none."""
        with self._lock:
            stuck, entry = self._stuck.get(uri, 0), self._conns.get(uri)
            if stuck < _MAX_STUCK:
                if entry is None:
                    opening = _spawn(lambda: libvirt.open(uri), f"libvirt-open-{label}")
                    entry = self._conns[uri] = _Entry(opening, uri)
                entry.refs += 1
        if stuck >= _MAX_STUCK:
            raise HostUnreachable(f"{label} did not answer ({stuck} calls still stuck)")
        return entry

    def _call(self, uri, label, fn, heavy):
        """Start fn on the host's connection in its own thread (a heavy call once it has a
        slot); (connection entry, give-up event, the call's Future)."""
        slot = self._take_slot(uri, label, heavy) if heavy else None
        try:
            entry, gave_up = self._acquire(label, uri), threading.Event()
        except BaseException:
            if slot:
                slot.release()
            raise
        work = _spawn(partial(self._work, label, entry, fn, gave_up, slot), f"libvirt-{label}")
        return entry, gave_up, work

    def _gave_up(self, uri, label, entry, work, heavy, name, timeout):
        """The error for a call its caller stopped waiting for (its thread runs on)."""
        if not heavy:  # a silent host loses its connection; a busy one keeps it for the call
            self._drop(entry, uri)
        self._count_stuck(uri, 1)
        work.add_done_callback(lambda _: self._count_stuck(uri, -1))
        if heavy:
            return SlowCall(
                f"{label} did not finish {heavy} {name or ''} within {timeout:g}s"
                " (it may still finish there)"
            )
        return HostUnreachable(f"{label} did not answer within {timeout}s")

    def _take_slot(self, uri, label, heavy):
        """One of the host's heavy-call slots (released when the call's thread ends, not when
        its caller gives up, so a slow host never runs more than `concurrency` at once)."""
        with self._lock:
            slot = self._slots.setdefault(uri, threading.BoundedSemaphore(self.concurrency))
        if not slot.acquire(timeout=self.call_timeout):
            raise SlowCall(
                f"{label} is busy: {self.concurrency} heavy calls have run there for over"
                f" {self.call_timeout:g}s; {heavy} not started"
            )
        return slot

    def _work(self, label, entry, fn, gave_up, slot=None):
        """In a worker thread: wait for the connection to open, then run fn on it."""
        conn = None
        try:
            conn = entry.opening.result()
            if gave_up.is_set():  # the caller gave up before the host answered: do nothing
                raise HostUnreachable("abandoned")
            if conn.isAlive() != 1:  # a local check, no RPC
                raise _Broken("connection is not alive")
            result = fn(conn)
            self._heard_from(entry)
            return result
        except libvirt.libvirtError as exc:
            if conn is None:  # the open failed
                raise HostUnreachable(f"{label} unreachable: {exc}") from None
            if exc.get_error_domain() == libvirt.VIR_FROM_RPC or exc.get_error_code() in _DEAD:
                raise _Broken(exc.get_error_message() or str(exc)) from exc
            self._heard_from(entry)  # libvirt refused something: the host did answer
            raise
        finally:
            self._drop(entry)
            if slot:
                slot.release()

    def _heard_from(self, entry):
        """Note that the host behind a connection entry answered just now."""
        with self._lock:
            self._answered[entry.uri] = time.time()

    def last_answer(self, host) -> float | None:
        """When (epoch seconds) the host last answered any call, a late one included."""
        with self._lock:
            return self._answered.get(self.uri_for(host))

    def _count_stuck(self, uri, delta):
        """Count abandoned calls whose thread still runs."""
        with self._lock:
            self._stuck[uri] = self._stuck.get(uri, 0) + delta

    def _drop(self, entry, uri=None):
        """Drop a call's reference, or with uri the cache's (if still cached); the last closes."""
        with self._lock:
            if uri is not None:
                if self._conns.get(uri) is not entry:
                    return  # already uncached
                del self._conns[uri]
            entry.refs -= 1
            last = entry.refs == 0
        # Only now: closing under a running call could free the connection from under it.
        if last:
            entry.opening.add_done_callback(_close_later)


def _spawn(fn, name) -> Future:
    """Run fn in a new daemon thread; its outcome lands in the returned Future."""
    fut = Future()

    def body():
        try:
            fut.set_result(fn())
        except BaseException as exc:  # handed to the waiting caller, whatever it is
            fut.set_exception(exc)

    threading.Thread(target=body, name=name, daemon=True).start()
    return fut


def _close_later(opening: Future) -> None:
    """Close what an open produced, in another thread: closing a remote connection is an RPC."""
    if opening.exception() is None:
        _spawn(opening.result().close, "libvirt-close")  # errors (already closed...) are dropped


def _ensure(dom, action: str) -> None:
    """Run create/shutdown/destroy unless the domain is already in the wanted state."""
    want_active = action == "create"
    if bool(dom.isActive()) == want_active:
        return
    try:
        getattr(dom, action)()
    except libvirt.libvirtError:
        # Lost a race with another actor, or the guest itself: the wanted state is what counts.
        if bool(dom.isActive()) != want_active:
            raise
