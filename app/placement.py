"""Choose a host for a new VM: filter out hosts that cannot take it, then rank the rest."""

from app.errors import InvalidInput, NotFound
from app.numbers import is_digits

POLICIES = ("striping", "packing")
# Host tasks that change what the host is (its address, mount, or existence): a VM placed now
# could end up on the old machine while its row points at the new one.
CHANGING_TASKS = ("adding", "preparing", "removing")


def choose_host(
    hosts: list[dict],
    mem: int,
    *,
    policy: str = "striping",
    overcommit: float = 1.0,
    requested=None,
) -> dict:
    """The host a VM of mem MiB should go to, OpenNebula style (filter, then rank)."""
    _check_request(hosts, mem, policy, overcommit)
    if requested is not None and str(requested).strip():
        host = _find(hosts, requested)
        reason = _unfit(host, mem, overcommit)
        if reason:
            raise InvalidInput(f"host {host['name']} cannot take a VM of {mem} MiB: {reason}")
        return host

    fit = [h for h in hosts if not _unfit(h, mem, overcommit)]
    if not fit:
        reasons = "; ".join(f"{h['name']}: {_unfit(h, mem, overcommit)}" for h in hosts)
        raise InvalidInput(f"no host can take a VM of {mem} MiB: {reasons}")
    if policy == "striping":
        # Spread the load: fewest VMs first, then the most room left.
        return min(fit, key=lambda h: (h.get("vm_count") or 0, -_free(h, overcommit), h["id"]))
    # Packing fills hosts up, leaving others empty: most VMs, then the tightest fit.
    return min(fit, key=lambda h: (-(h.get("vm_count") or 0), _free(h, overcommit), h["id"]))


def _check_request(hosts, mem, policy, overcommit):
    """Refuse a placement request that cannot be answered."""
    if policy not in POLICIES:
        raise InvalidInput(f"unknown placement policy {policy!r}: use striping or packing")
    if not isinstance(mem, int) or isinstance(mem, bool) or mem <= 0:
        raise InvalidInput(f"VM memory must be a positive number of MiB, not {mem!r}")
    if not overcommit or overcommit <= 0:
        raise InvalidInput(f"memory overcommit must be above 0, not {overcommit!r}")
    if not hosts:
        raise InvalidInput("no hosts registered: add a host first")


def _find(hosts: list[dict], requested) -> dict:
    """The host named by an id (int or digit string) or a name; NotFound otherwise."""
    key = str(requested).strip()
    if is_digits(key):
        for host in hosts:
            if host["id"] == int(key):
                return host
    for host in hosts:
        if host["name"] == key:
            return host
    raise NotFound(f"host {key} not found")


def _free(host: dict, overcommit: float) -> float:
    """MiB still unallocated on a host, counting overcommit."""
    return host["mem"] * overcommit - (host.get("mem_allocated") or 0)


def _unfit(host: dict, mem: int, overcommit: float) -> str | None:
    """Why the host cannot take a VM of mem MiB, or None when it can."""
    if host.get("state") != "ready":
        return f"state is {host.get('state') or 'unknown'}"
    if host.get("task") in CHANGING_TASKS:
        return f"host is {host['task']} (operation {host.get('task_op')})"
    if host.get("mem") is None:
        return "memory not known yet"
    free = _free(host, overcommit)
    if free < mem:
        return f"{max(0, int(free))} MiB free of {host['mem']} MiB (overcommit {float(overcommit)})"
    return None
