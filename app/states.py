"""The state Nube records for a VM, decided from what its host's hypervisor reports: one rule
for the monitor, re-checks, recovery after failed actions and after failed migrations."""


def vm_state(domain_state: str | None) -> str:
    """A VM's state from its domain's, in the hypervisor adapter's words (`running`, `paused`,
    `stopped`, `other`; None: no such domain). A paused domain (suspended, or left paused by a
    migration that stopped at its switch-over) still holds its guest and memory: running.
    No domain where the VM should be is an error; anything else is stopped."""
    if domain_state is None:
        return "error"
    return "running" if domain_state in ("running", "paused") else "stopped"


# The states each kind may start from (its claim checks them in the same compare-and-swap that
# takes the task; pages show an action's button in these states only).
VM_STARTABLE = ("stopped", "error", "unknown")
VM_STOPPABLE = ("running", "unknown", "error")
VM_REMOVABLE = ("stopped", "running", "error", "unknown")
VM_MIGRATABLE = ("running", "stopped")
HOST_DRAINABLE = ("ready", "disabled", "maintenance", "error")
