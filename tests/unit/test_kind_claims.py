"""The claim is part of the kind: request() writes the operation row and takes the kind's
claim (task free and state allowed, one compare-and-swap) in one transaction; a refused claim
writes nothing at all (no operation row, no audit record, no task), since nothing was done."""

import threading

import pytest

from app import states
from app.db import connect, get_db, transaction
from app.errors import Busy, Conflict, NotFound
from app.ops import claims, kinds
from app.ops.context import OperationContext
from app.ops.request import record, request
from app.repositories import hosts as hosts_repo
from app.repositories import vms as vms_repo
from tests.factories import gen_operation, gen_vm

TABLES = {"vm": "vms", "host": "hosts", "volume": "volumes"}
KNOWN_STATES = {
    "vms": set(states.VM_REMOVABLE),
    "hosts": set(states.HOST_DRAINABLE) | {"preparing", "unreachable", "removing"},
    "volumes": set(states.VOLUME),
}


def written(conn):
    """How many operation and audit rows there are."""
    return tuple(
        conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("operations", "audit")
    )


@pytest.mark.parametrize("name", sorted(kinds.KINDS))
def test_every_kind_declares_its_claim(name):
    kind = kinds.KINDS[name]
    claim = kind.claim
    assert isinstance(claim, claims.Claim) and claim.mode in claims.MODES
    assert name.split(".")[0] == kind.target_type
    if claim.mode == claims.ONE_ACTIVE:
        assert claim.task is None and claim.from_states == ()  # no row to hold or check
    else:
        assert claim.table == TABLES[kind.target_type] and claim.task
        assert set(claim.from_states) <= KNOWN_STATES[claim.table]
    for part in (claim.each,) if claim.each else ():
        assert part.mode in (claims.ROW, claims.HOST_AND_VMS) and part.task
    assert not kind.undo_needs or kind.undo  # facts kept for an undo that exists


def test_a_row_deleted_meanwhile_is_not_found_and_nothing_is_written(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    conn = get_db()
    row = vms_repo.get(conn, "vm1")  # read by the request, then removed by someone else
    vms_repo.delete(conn, "vm1")
    before = written(conn)
    with pytest.raises(NotFound, match="VM vm1 not found"):
        request(kinds.VM_START, row, "admin")
    assert written(conn) == before


def test_a_state_the_kind_does_not_start_from_is_refused_and_nothing_is_written(ctx, host, image):
    gen_vm(ctx, image, "vm1")  # stopped
    conn = get_db()
    before = written(conn)
    with pytest.raises(Conflict, match="VM vm1 is stopped: cannot stop it"):
        request(kinds.VM_STOP, vms_repo.get(conn, "vm1"), "admin")
    assert written(conn) == before
    assert vms_repo.get(conn, "vm1")["task"] is None


def test_a_busy_target_names_who_holds_it(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    conn = get_db()
    assert vms_repo.claim_task(conn, "vm1", "stopping", 41)
    with pytest.raises(Busy, match=r"busy: VM vm1 is stopping \(operation 41 is running\)"):
        request("vm.start", vms_repo.get(conn, "vm1"), "admin")  # a kind by its name too


def test_of_two_concurrent_requests_on_one_vm_exactly_one_wins(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    row = dict(vms_repo.get(get_db(), "vm1"))
    before = written(get_db())[0]
    barrier = threading.Barrier(2, timeout=30)
    outcomes = []

    def ask(kind):
        conn = connect(ctx.config["DATABASE"])  # a connection of its own, as a worker's
        try:
            barrier.wait()
            with transaction(conn):
                outcomes.append(("won", record(conn, kind, row, "admin")))
        except (Busy, Conflict) as refused:
            outcomes.append(("refused", str(refused)))
        finally:
            conn.close()

    threads = [threading.Thread(target=ask, args=(k,)) for k in (kinds.VM_START, kinds.VM_REMOVE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcome for outcome, _ in outcomes) == ["refused", "won"]
    [winner] = [value for outcome, value in outcomes if outcome == "won"]
    [refusal] = [value for outcome, value in outcomes if outcome == "refused"]
    assert f"(operation {winner} is running)" in refusal
    assert vms_repo.get(get_db(), "vm1")["task_op"] == winner
    assert written(get_db())[0] == before + 1  # the winner's row only


def test_a_host_removal_takes_the_host_and_every_vm_or_nothing(ctx, host, image):
    for vm_id in ("vm1", "vm2"):
        gen_vm(ctx, image, vm_id)
    conn = get_db()
    assert vms_repo.claim_task(conn, "vm2", "starting", 77)
    before = written(conn)
    with pytest.raises(Busy, match=r"busy: VM vm2 is starting \(operation 77 is running\)"):
        request(kinds.HOST_REMOVE, hosts_repo.get(conn, host["id"]), "admin")
    assert written(conn) == before
    row = hosts_repo.get(conn, host["id"])
    assert (row["task"], row["state"]) == (None, "ready")  # the host's claim rolled back too
    assert vms_repo.get(conn, "vm1")["task"] is None
    vms_repo.clear_task(conn, "vm2")
    with transaction(conn):  # recorded, not launched: what the claim took stays visible
        op_id = record(conn, kinds.HOST_REMOVE, hosts_repo.get(conn, host["id"]), "admin")
    row = hosts_repo.get(conn, host["id"])
    assert (row["task"], row["task_op"], row["state"]) == ("removing", op_id, "removing")
    assert [(vm["task"], vm["task_op"]) for vm in vms_repo.on_host(conn, host["id"])] == [
        ("removing", op_id),
        ("removing", op_id),
    ]


def test_a_drain_claims_only_drainable_hosts_and_puts_them_in_maintenance(ctx, host):
    conn = get_db()
    hosts_repo.update(conn, host["id"], state="unreachable")
    with pytest.raises(Conflict, match="host h1 is unreachable: cannot drain it"):
        request(kinds.HOST_DRAIN, hosts_repo.get(conn, host["id"]), "admin")
    hosts_repo.update(conn, host["id"], state="ready")
    with transaction(conn):
        op_id = record(conn, kinds.HOST_DRAIN, hosts_repo.get(conn, host["id"]), "admin")
    row = hosts_repo.get(conn, host["id"])
    assert (row["task"], row["task_op"], row["state"]) == ("draining", op_id, "maintenance")


def test_an_undo_reads_only_the_facts_its_kind_declares(ctx):
    conn = get_db()
    op_id = gen_operation(conn, "vm.create", "vm:vm1")
    row = conn.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
    kind = kinds.VM_CREATE
    context = OperationContext(ctx, conn, row, kind.time_limit, kind)
    assert context.undo_data == {"made_disk": False, "made_seed": False}
    context.remember("made_disk")
    assert context.recalled("made_disk") and not context.recalled("made_seed")
    with pytest.raises(KeyError, match="published"):
        context.remember("published")  # image.build's fact, not vm.create's
