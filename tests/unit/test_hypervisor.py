"""The libvirt adapter against libvirt's test driver: one driver XML file per fake host."""

import contextlib
import threading

import libvirt
import pytest

from app.adapters import hypervisor
from app.adapters.hypervisor import DomainInfo, HostUnreachable, Hypervisor, HypervisorError
from app.errors import InvalidInput, NotFound, SlowCall
from tests.wait import join_all, wait_for

# The test driver's node format (cf. libvirt's examples/xml/test/testnode.xml); memory in KiB.
NODE_XML = (
    "<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets>"
    "<cores>{cores}</cores><threads>1</threads></cpu><memory>{kib}</memory></node>"
)
# The test driver takes type='qemu' domains; it "shuts down" a guest at once.
DOMAIN_XML = (
    "<domain type='qemu'><name>{name}</name><memory unit='MiB'>512</memory><vcpu>2</vcpu>"
    "<os><type arch='i686'>hvm</type></os></domain>"
)
A = {"id": 1, "name": "alpha", "address": "alpha", "user": "root"}
B = {"id": 2, "name": "beta", "address": "beta", "user": "root"}
SLOW = {"id": 3, "name": "slow", "address": "slow", "user": "root"}


@pytest.fixture
def make_hv(tmp_path):
    """Build adapters whose hosts are test driver files in tmp_path."""
    for name, cores, mib in [("alpha", 2, 4096), ("beta", 4, 8192), ("slow", 2, 4096)]:
        (tmp_path / f"{name}.xml").write_text(NODE_XML.format(cores=cores, kib=mib * 1024))
    made = []

    def make(timeout=10.0, **options):
        hv = Hypervisor(f"test://{tmp_path}/{{address}}.xml", timeout=timeout, **options)
        made.append(hv)
        return hv

    yield make
    for hv in made:
        hv.close()


@pytest.fixture
def hv(make_hv):
    return make_hv()


@pytest.fixture
def opened(monkeypatch):
    """Every connection the adapter opens, in order."""
    conns, real_open = [], libvirt.open

    def recording_open(uri):
        conns.append(real_open(uri))
        return conns[-1]

    monkeypatch.setattr(libvirt, "open", recording_open)
    return conns


def eventually(check, message, limit=10.0):
    """Poll an asynchronous effect until check() is true (an error counts as not yet)."""
    wait_for(check, timeout=limit, interval=0.01, message=message, ignore=(Exception,))


def is_closed(conn):
    """Whether a libvirt connection object was closed."""
    try:
        conn.isAlive()
    except libvirt.libvirtError:
        return True
    return False


def test_uri_for_formats_host_fields_and_the_keyfile():
    hv = Hypervisor(
        "qemu+ssh://{user}@{address}/system?keyfile={keyfile}&no_tty=1", keyfile="/etc/nube/id"
    )
    host = {"id": 4, "name": "n4", "address": "10.0.0.4", "user": "nube", "state": "ready"}
    assert hv.uri_for(host) == "qemu+ssh://nube@10.0.0.4/system?keyfile=/etc/nube/id&no_tty=1"
    assert Hypervisor("test:///x/{name}-{id}.xml").uri_for(host) == "test:///x/n4-4.xml"
    with pytest.raises(InvalidInput):
        Hypervisor("qemu+ssh://{login}@{address}/system").uri_for(host)
    # Host rows carry the sudo password too: no template can put it in a URI.
    with pytest.raises(InvalidInput) as err:
        Hypervisor("qemu+ssh://{user}:{password}@{address}/").uri_for(host | {"password": "pw1"})
    assert "pw1" not in str(err.value)


def test_host_info_reads_each_host(hv):
    alpha, beta = hv.host_info(A), hv.host_info(B)
    assert (alpha.cpus, alpha.mem, alpha.kvm) == (2, 4096, False)
    assert (beta.cpus, beta.mem) == (4, 8192)
    assert alpha.free_mem >= 0 and alpha.hostname


def test_domain_lifecycle(hv):
    hv.define(A, DOMAIN_XML.format(name="web"))
    # one getAllDomainStats call: a stopped domain reports no balloon/vcpu figures (0)
    assert hv.list_domains(A) == {"web": DomainInfo("web", "stopped", 0, 0)}
    assert hv.list_domains(B) == {}  # distinct hosts, distinct hypervisors

    hv.start(A, "web")
    hv.start(A, "web")  # already running: fine
    assert hv.domain_state(A, "web") == "running"
    hv.shutdown(A, "web")
    hv.shutdown(A, "web")  # already stopped: fine
    assert hv.domain_state(A, "web") == "stopped"
    hv.start(A, "web")
    hv.force_off(A, "web")
    hv.force_off(A, "web")
    assert hv.domain_state(A, "web") == "stopped"

    hv.undefine(A, "web")  # falls back to a plain undefine: the test driver rejects NVRAM
    assert hv.domain_state(A, "web") is None
    assert hv.list_domains(A) == {}


def test_list_domains_states(hv, opened):
    for name in ("up", "down", "frozen"):
        hv.define(A, DOMAIN_XML.format(name=name))
    hv.start(A, "up")
    hv.start(A, "frozen")
    opened[-1].lookupByName("frozen").suspend()  # the adapter has no pause: use its connection
    states = {name: info.state for name, info in hv.list_domains(A).items()}
    assert states == {"up": "running", "down": "stopped", "frozen": "paused"}


def test_libvirt_errors_are_mapped(hv):
    assert hv.domain_state(A, "ghost") is None
    for action in (hv.start, hv.shutdown, hv.force_off, hv.undefine):
        with pytest.raises(NotFound, match="domain ghost not found on host alpha"):
            action(A, "ghost")
    with pytest.raises(HypervisorError, match="libvirt error on host alpha: .*domain"):
        hv.define(A, "<domain type='qemu'>")


def test_a_host_that_cannot_be_reached(hv, tmp_path):
    gone = {"id": 9, "name": "gone", "address": "gone", "user": "root"}
    with pytest.raises(HostUnreachable, match=r"host gone \(gone\) unreachable: .*gone\.xml"):
        hv.host_info(gone)
    # A failed open is not cached: once the host is back, the next call gets through.
    (tmp_path / "gone.xml").write_text(NODE_XML.format(cores=1, kib=1024 * 1024))
    assert hv.host_info(gone).mem == 1024


def test_one_cached_connection_per_host(hv, opened):
    hv.define(A, DOMAIN_XML.format(name="web"))
    hv.list_domains(A)
    hv.host_info(B)
    hv.list_domains(B)
    assert len(opened) == 2
    # With the test driver each open starts afresh: keeping "web" proves the cache was used.
    assert list(hv.list_domains(A)) == ["web"]


def test_reconnects_when_the_connection_was_closed_behind_its_back(hv, opened):
    hv.define(A, DOMAIN_XML.format(name="web"))
    opened[0].close()
    assert hv.list_domains(A) == {}  # it works, on a fresh test driver connection
    assert len(opened) == 2


def test_close_drops_cached_connections(hv, opened):
    hv.host_info(A)
    hv.host_info(B)
    hv.close(A)
    eventually(lambda: is_closed(opened[0]), "host A's connection to be closed")
    assert not is_closed(opened[1])
    hv.host_info(A)
    hv.close()
    eventually(
        lambda: is_closed(opened[1]) and is_closed(opened[2]), "every cached connection to close"
    )
    assert len(opened) == 3


def system_error(message, origin=libvirt.VIR_FROM_RPC):
    """A VIR_ERR_SYSTEM_ERROR, by default as a dropped remote connection raises it."""
    err = libvirt.libvirtError(message)
    err.err = (libvirt.VIR_ERR_SYSTEM_ERROR, origin, message, 2, None, None, None)
    return err


class FakeConn:
    """Just enough of virConnect; listAllDomains raises `error` when given one."""

    def __init__(self, error=None):
        self.error = error

    def isAlive(self):
        return 1

    def listAllDomains(self):
        if self.error:
            raise self.error
        return []

    def getAllDomainStats(self, stats):
        return self.listAllDomains()

    def close(self):
        pass


RESET = system_error("Cannot recv data: Connection reset by peer")
LOCAL = system_error("Cannot access storage file", origin=libvirt.VIR_FROM_QEMU)


@pytest.mark.parametrize(
    ("errors", "outcome", "opens"),
    [
        # Broken once: retried on a fresh connection.
        ([RESET], contextlib.nullcontext(), 2),
        # Broken twice in a row: the host is unreachable (one retry, no more).
        ([RESET, RESET], pytest.raises(HostUnreachable, match=r"alpha \(alpha\) unreachable"), 2),
        # A system error that does not come from the RPC layer: the request failed, no reconnect.
        ([LOCAL], pytest.raises(HypervisorError, match="on host alpha: Cannot access storage"), 1),
    ],
)
def test_connection_errors(hv, monkeypatch, errors, outcome, opens):
    conns = [FakeConn(error) for error in errors] + [FakeConn(), FakeConn()]
    monkeypatch.setattr(libvirt, "open", lambda uri: conns.pop(0))
    with outcome:
        assert hv.list_domains(A) == {}
    assert len(errors) + 2 - len(conns) == opens


@pytest.fixture
def blocked_open(monkeypatch):
    """Opens of the 'slow' host block until `release` is set; the rest go through."""
    state = {"release": threading.Event(), "entered": threading.Event(), "events": [], "late": []}
    real_open = libvirt.open

    def open_(uri):
        if uri.endswith("/slow.xml") and not state["release"].is_set():
            state["events"].append("slow open entered")
            state["entered"].set()
            state["release"].wait(60)
            state["late"].append(real_open(uri))
            return state["late"][-1]
        return real_open(uri)

    monkeypatch.setattr(libvirt, "open", open_)
    yield state
    state["release"].set()  # never leave threads blocked, even when the test fails


def test_a_hung_host_times_out_without_blocking_other_hosts(make_hv, blocked_open):
    # Generous, so that the other host's quick calls surely fit inside the slow host's wait.
    hv = make_hv(timeout=3.0)
    events, outcome = blocked_open["events"], {}

    def call_slow_host():
        try:
            outcome["slow"] = hv.host_info(SLOW)
        except HostUnreachable as exc:
            outcome["slow"] = exc
            events.append("slow host unreachable")

    caller = threading.Thread(target=call_slow_host)
    caller.start()
    assert blocked_open["entered"].wait(30)
    # The slow host's open is blocked right now; another host still answers.
    hv.define(B, DOMAIN_XML.format(name="web"))
    hv.start(B, "web")
    assert hv.list_domains(B)["web"].state == "running"
    events.append("other host answered")
    join_all([caller], timeout=30, message="the slow host's caller")

    assert isinstance(outcome["slow"], HostUnreachable)
    assert str(outcome["slow"]) == "host slow (slow) did not answer within 3.0s"
    assert events == ["slow open entered", "other host answered", "slow host unreachable"]

    blocked_open["release"].set()
    assert hv.host_info(SLOW).mem == 4096  # a fresh connection
    eventually(
        lambda: blocked_open["late"] and is_closed(blocked_open["late"][0]),
        "the slow host's late connection to be closed",
    )


def test_stuck_calls_are_capped_per_host_and_never_run_late(make_hv, blocked_open):
    hv, ran = make_hv(timeout=0.2), []
    for _ in range(hypervisor._MAX_STUCK):
        with pytest.raises(HostUnreachable, match="did not answer within 0.2s"):
            hv._run(SLOW, ran.append)
    with pytest.raises(HostUnreachable, match=f"{hypervisor._MAX_STUCK} calls still stuck"):
        hv.list_domains(SLOW)
    assert blocked_open["events"].count("slow open entered") == hypervisor._MAX_STUCK
    assert hv.list_domains(A) == {}  # other hosts are unaffected

    blocked_open["release"].set()
    # A late connection closes only once its abandoned call let go of it; none of them ran.
    late = blocked_open["late"]
    eventually(
        lambda: len(late) == hypervisor._MAX_STUCK and all(map(is_closed, late)),
        f"all {hypervisor._MAX_STUCK} late connections to be closed",
    )
    assert ran == []
    eventually(lambda: hv.list_domains(SLOW) == {}, "the slow host to answer again")


@pytest.fixture
def slow_ensure(monkeypatch):
    """Every heavy power call sleeps `delay` seconds first; counts how many run at once, per
    host (the test driver's connection URI)."""
    state = {"delay": 0.0, "running": {}, "most": {}}
    lock = threading.Lock()
    real = hypervisor._ensure

    def ensure(dom, action):
        uri = dom.connect().getURI()
        with lock:
            state["running"][uri] = state["running"].get(uri, 0) + 1
            state["most"][uri] = max(state["most"].get(uri, 0), state["running"][uri])
        try:
            threading.Event().wait(state["delay"])
            real(dom, action)
        finally:
            with lock:
                state["running"][uri] -= 1

    monkeypatch.setattr(hypervisor, "_ensure", ensure)
    return state


def test_a_heavy_call_has_its_own_limit_not_the_hosts_liveness_timeout(make_hv, slow_ensure):
    hv = make_hv(timeout=0.5, call_timeout=10)
    hv.define(A, DOMAIN_XML.format(name="web"))
    slow_ensure["delay"] = 1.0  # twice the cheap calls' timeout
    hv.start(A, "web")
    assert hv.domain_state(A, "web") == "running"


def test_a_heavy_call_past_its_limit_is_a_slow_call_that_may_still_finish(make_hv, slow_ensure):
    hv = make_hv(timeout=5, call_timeout=0.3)
    hv.define(A, DOMAIN_XML.format(name="web"))
    slow_ensure["delay"] = 1.0
    with pytest.raises(SlowCall, match="did not finish start web within 0.3s"):
        hv.start(A, "web")
    wait_for(lambda: hv.domain_state(A, "web") == "running", message="the late start to land")


def test_heavy_calls_queue_per_host_and_hosts_run_in_parallel(make_hv, slow_ensure):
    hv = make_hv(call_timeout=30, concurrency=2)
    names = [f"vm{n}" for n in range(5)]
    for host in (A, B):
        for name in names:
            hv.define(host, DOMAIN_XML.format(name=name))
    slow_ensure["delay"] = 0.2
    threads = [
        threading.Thread(target=hv.start, args=(host, name)) for host in (A, B) for name in names
    ]
    for thread in threads:
        thread.start()
    join_all(threads, timeout=30, message="the starts")
    assert sorted(slow_ensure["most"].values()) == [2, 2]  # two at once on each host, never 3
    assert all(hv.domain_state(h, n) == "running" for h in (A, B) for n in names)
