"""Choose a host for a new VM: filter out hosts that cannot take it, then rank the rest."""

from app import states
from app.errors import InvalidInput, NotFound
from app.numbers import is_digits

POLICIES = ("striping", "packing")
# Host tasks that change what the host is (its address, mount, or existence): a VM placed now
# could end up on the old machine while its row points at the new one.
CHANGING_TASKS = states.HOST_CHANGING_TASKS


def choose_host(
    hosts: list[dict],
    mem: int,
    *,
    vcpus: int = 1,
    policy: str = "striping",
    overcommit: float = 1.0,
    cpu_overcommit: float | None = None,
    requested=None,
) -> dict:
    """The host a VM of mem MiB and vcpus vCPUs should go to, OpenNebula style (filter, then
    rank). cpu_overcommit: vCPUs allowed per host CPU (None: vCPUs are not limited)."""
    _check_request(hosts, mem, policy, overcommit)
    if cpu_overcommit is not None and not cpu_overcommit > 0:
        raise InvalidInput(f"vCPU overcommit must be above 0, not {cpu_overcommit!r}")

    def unfit(host):
        return _unfit(host, mem, overcommit) or _cpu_unfit(host, vcpus, cpu_overcommit)

    if requested is not None and str(requested).strip():
        host = _find(hosts, requested)
        reason = unfit(host)
        if reason:
            raise InvalidInput(f"host {host['name']} cannot take {_size(mem, vcpus)}: {reason}")
        return host

    fit = [h for h in hosts if not unfit(h)]
    if not fit:
        reasons = "; ".join(f"{h['name']}: {unfit(h)}" for h in hosts)
        raise InvalidInput(f"no host can take {_size(mem, vcpus)}: {reasons}")
    if policy == "striping":
        # Spread the load: fewest VMs first, then the most room left.
        return min(fit, key=lambda h: (h.get("vm_count") or 0, -_free(h, overcommit), h["id"]))
    # Packing fills hosts up, leaving others empty: most VMs, then the tightest fit.
    return min(fit, key=lambda h: (-(h.get("vm_count") or 0), _free(h, overcommit), h["id"]))


def _size(mem, vcpus):
    """A VM's size as errors name it."""
    return f"a VM of {mem} MiB" + (f" and {vcpus} vCPUs" if vcpus > 1 else "")


def free_vcpus(host: dict, cpu_overcommit: float) -> int:
    """vCPUs still unallocated on a host, counting overcommit."""
    return int(host["cpus"] * cpu_overcommit) - (host.get("vcpus_allocated") or 0)


def _cpu_unfit(host: dict, vcpus: int, cpu_overcommit: float | None) -> str | None:
    """Why the host has too few vCPUs left for the VM, or None."""
    if cpu_overcommit is None or not host.get("cpus"):
        return None  # a host whose CPUs are not known yet is judged by its memory alone
    free = free_vcpus(host, cpu_overcommit)
    if free < vcpus:
        return (
            f"{max(0, free)} vCPUs free of {host['cpus']} CPUs"
            f" (vCPU overcommit {float(cpu_overcommit)})"
        )
    return None


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
