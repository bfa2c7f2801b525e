"""Placement: filter hosts that cannot take a VM, rank the rest by policy."""

import pytest

from app import core
from app.db import get_db
from app.errors import InvalidInput, NotFound
from app.placement import choose_host
from app.repositories import hosts as hosts_repo
from tests.factories import gen_prepared_host as _host


def host(id, name=None, *, state="ready", mem=4096, alloc=0, vms=0):
    """A host row as the repositories hand it over."""
    return {
        "id": id,
        "name": name or f"node{id}",
        "state": state,
        "mem": mem,
        "mem_allocated": alloc,
        "vm_count": vms,
    }


def test_striping_prefers_fewest_vms_then_most_free_memory():
    hosts = [host(1, vms=3), host(2, vms=1, alloc=3000), host(3, vms=1, alloc=1000)]
    assert choose_host(hosts, 512)["name"] == "node3"


def test_packing_prefers_most_vms_then_tightest_fit():
    hosts = [host(1, vms=1), host(2, vms=3, alloc=1000), host(3, vms=3, alloc=3000)]
    assert choose_host(hosts, 512, policy="packing")["name"] == "node3"


def test_packing_skips_a_full_host_even_if_it_has_most_vms():
    hosts = [host(1, vms=9, alloc=4000), host(2, vms=2)]
    assert choose_host(hosts, 512, policy="packing")["name"] == "node2"


@pytest.mark.parametrize("policy", ["striping", "packing"])
def test_full_ties_go_to_the_lowest_id(policy):
    hosts = [host(7), host(3), host(5)]
    assert choose_host(hosts, 512, policy=policy)["id"] == 3


def test_an_exact_fit_is_accepted():
    assert choose_host([host(1, alloc=3072)], 1024)["id"] == 1


def test_overcommit_makes_room():
    hosts = [host(1, alloc=4096)]
    with pytest.raises(InvalidInput):
        choose_host(hosts, 1024)
    assert choose_host(hosts, 1024, overcommit=1.5)["id"] == 1


def test_disabled_unreachable_and_unknown_hosts_are_filtered():
    hosts = [
        host(1, state="disabled", vms=0),
        host(2, state="unreachable", vms=0),
        host(3, mem=None, vms=0),
        host(4, vms=5),
    ]
    assert choose_host(hosts, 512)["id"] == 4


def test_message_gives_a_reason_for_each_host():
    hosts = [host(1, state="disabled"), host(2, alloc=3072), host(3, mem=None)]
    with pytest.raises(InvalidInput) as err:
        choose_host(hosts, 2048)
    assert str(err.value) == (
        "no host can take a VM of 2048 MiB: node1: state is disabled; "
        "node2: 1024 MiB free of 4096 MiB (overcommit 1.0); node3: memory not known yet"
    )


def test_message_shows_overcommit_and_no_negative_free_memory():
    with pytest.raises(InvalidInput, match=r"node1: 0 MiB free of 4096 MiB \(overcommit 0.5\)"):
        choose_host([host(1, alloc=3000)], 512, overcommit=0.5)


def test_no_hosts_at_all():
    with pytest.raises(InvalidInput, match="^no hosts registered: add a host first$"):
        choose_host([], 512)


@pytest.mark.parametrize("requested", [2, "2", " 2 ", "node2"])
def test_requested_host_by_id_digit_string_or_name(requested):
    hosts = [host(1), host(2, vms=9)]  # striping alone would pick node1
    assert choose_host(hosts, 512, requested=requested)["id"] == 2


def test_a_digit_string_falls_back_to_a_name():
    hosts = [host(1), host(2, name="42")]
    assert choose_host(hosts, 512, requested="42")["id"] == 2


@pytest.mark.parametrize("requested", [None, ""])
def test_empty_request_means_any_host(requested):
    assert choose_host([host(1), host(2)], 512, requested=requested)["id"] == 1


@pytest.mark.parametrize("requested", [9, "9", "nope"])
def test_requested_host_must_exist(requested):
    with pytest.raises(NotFound):
        choose_host([host(1)], 512, requested=requested)


def test_requested_host_must_fit_and_the_error_says_why():
    hosts = [host(1), host(2, state="disabled"), host(3, alloc=4000)]
    with pytest.raises(InvalidInput, match="^host node2 cannot take .*: state is disabled$"):
        choose_host(hosts, 512, requested="node2")
    with pytest.raises(InvalidInput, match=r"node3 .*: 96 MiB free of 4096 MiB"):
        choose_host(hosts, 512, requested=3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"policy": "random"}, "unknown placement policy"),
        ({"mem": 0}, "positive"),
        ({"mem": "512"}, "positive"),
        ({"overcommit": 0}, "overcommit"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"mem": 512} | kwargs
    mem = args.pop("mem")
    with pytest.raises(InvalidInput, match=match):
        choose_host([host(1)], mem, **args)


def test_input_is_not_modified():
    hosts = [host(2), host(1)]
    before = [dict(h) for h in hosts]
    choose_host(hosts, 512, policy="packing")
    assert hosts == before


def test_vcpus_are_limited_by_the_cpu_overcommit():
    small = {**host(1), "cpus": 2, "vcpus_allocated": 6}
    roomy = {**host(2), "cpus": 4, "vcpus_allocated": 0}
    assert choose_host([small, roomy], 512, vcpus=4, cpu_overcommit=2.0)["id"] == 2
    with pytest.raises(
        InvalidInput, match=r"node1: 0 vCPUs free of 2 CPUs \(vCPU overcommit 2.0\)"
    ):
        choose_host([small], 512, vcpus=1, cpu_overcommit=2.0)
    with pytest.raises(InvalidInput, match="cannot take a VM of 512 MiB and 8 vCPUs"):
        choose_host([small, roomy], 512, vcpus=8, cpu_overcommit=1.0, requested=2)
    assert choose_host([small], 512, vcpus=64)["id"] == 1  # no limit without an overcommit
    with pytest.raises(InvalidInput, match="vCPU overcommit must be above 0"):
        choose_host([roomy], 512, cpu_overcommit=0)


# Issue 9, finding 7: the placement race with a queued host change.


def test_a_host_whose_change_is_queued_receives_no_vm(app, image):
    host = _host(app)
    with app.app_context():
        conn = get_db()
        assert hosts_repo.claim_task(conn, host["id"], "preparing", 99)
        with pytest.raises(InvalidInput, match="host is preparing"):
            core.addVm({"id": "vm1", "image": image, "mem": 64})
        assert core.listVms() == []
        hosts_repo.clear_task(conn, host["id"], 99)
        assert core.addVm({"id": "vm1", "image": image, "mem": 64})["host"] == host["id"]
