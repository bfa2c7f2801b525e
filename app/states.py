"""Every state word Nube records or shows, defined once with its label and its colour (a
Bootstrap contextual name), as NetBox's ChoiceSet does: the services, the repositories' SQL, the
forms' choices, the API's enums, the templates (the Jinja global `states`) and the live script
(served as JSON by base.html) all read them from here. Also the one rule that turns what a
hypervisor reports about a domain into a VM's state."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    """One state word: its value (what the database stores), its label and its colour."""

    value: str
    label: str
    colour: str


class ChoiceSet:
    """An ordered set of choices: iterates its values, answers `in`, labels and colours."""

    def __init__(self, *choices):
        self._choices = {choice.value: choice for choice in choices}
        self.values = tuple(self._choices)

    def __iter__(self):
        return iter(self.values)

    def __contains__(self, value):
        return value in self._choices

    def __len__(self):
        return len(self.values)

    def label(self, value):
        """The label of value (the value itself when unknown)."""
        choice = self._choices.get(value)
        return choice.label if choice else str(value)

    def colour(self, value):
        """The colour of value ('light' when unknown)."""
        choice = self._choices.get(value)
        return choice.colour if choice else "light"

    def choices(self):
        """(value, label) pairs, for a form's select."""
        return [(choice.value, choice.label) for choice in self._choices.values()]

    def items(self):
        """Every Choice, in order."""
        return tuple(self._choices.values())


def _plain(value, colour):
    """A choice labelled with its own word (badges show the word the filter language takes)."""
    return Choice(value, value, colour)


# The words, in the order pages list them.
STOPPED, RUNNING, ERROR, UNKNOWN = "stopped", "running", "error", "unknown"
VM = ChoiceSet(
    _plain(RUNNING, "success"),
    _plain(STOPPED, "secondary"),
    _plain(UNKNOWN, "warning"),
    _plain(ERROR, "danger"),
)
# A VM's task: the transition in progress (shown with a spinner; empty when none).
VM_TASK = ChoiceSet(
    _plain("creating", "info"),
    _plain("starting", "info"),
    _plain("stopping", "info"),
    _plain("removing", "warning"),
    _plain("migrating", "info"),
    _plain("checking", "info"),
    _plain("resizing", "info"),
    _plain("attaching", "info"),
    _plain("detaching", "info"),
    _plain("growing", "info"),
    _plain("snapshotting", "info"),
    _plain("reverting", "warning"),
    Choice("deleting-snapshot", "deleting snapshot", "warning"),
    _plain("saving", "info"),
)

# A VM snapshot: being taken, there to revert to, being deleted, or broken by a failed
# deletion (its data may still be in some of the VM's files: delete it again).
SNAPSHOT = ChoiceSet(
    _plain("creating", "info"),
    _plain("ready", "success"),
    _plain("removing", "warning"),
    _plain("error", "danger"),
)

# A volume (Cinder's words): attached to no VM, attached to one, its file gone from the
# repository, or broken by a failed operation.
AVAILABLE, IN_USE, MISSING = "available", "in-use", "missing"
VOLUME = ChoiceSet(
    _plain(AVAILABLE, "success"),
    _plain(IN_USE, "primary"),
    _plain(MISSING, "warning"),
    _plain(ERROR, "danger"),
)
VOLUME_TASK = ChoiceSet(
    _plain("creating", "info"),
    _plain("attaching", "info"),
    _plain("detaching", "info"),
    _plain("growing", "info"),
    _plain("removing", "warning"),
)

READY, MAINTENANCE, DISABLED, UNREACHABLE = "ready", "maintenance", "disabled", "unreachable"
PREPARING, REMOVING = "preparing", "removing"
HOST = ChoiceSet(
    _plain(READY, "success"),
    _plain(MAINTENANCE, "info"),
    _plain(PREPARING, "info"),
    _plain(DISABLED, "secondary"),
    _plain(REMOVING, "warning"),
    _plain(UNREACHABLE, "warning"),
    _plain(ERROR, "danger"),
)
HOST_TASK = ChoiceSet(
    _plain("adding", "info"),
    _plain(PREPARING, "info"),
    _plain(REMOVING, "warning"),
    _plain("draining", "info"),
    _plain("checking", "info"),
)
# Host tasks that change what the host is: placement skips the host meanwhile.
HOST_CHANGING_TASKS = ("adding", PREPARING, REMOVING)
# The states an operator may set on a host (updateHost, the host form, the API).
HOST_OPERATOR_SETTABLE = (READY, DISABLED, MAINTENANCE)
# A host off placement by the operator's choice: the page offers "back to ready".
HOST_SET_ASIDE = (MAINTENANCE, DISABLED)
# Hosts the monitor reads (not while Nube prepares or removes them).
HOST_POLLED = (READY, UNREACHABLE, DISABLED, ERROR, MAINTENANCE)
# Hosts whose trouble the overview warns about; a re-check that answers brings them back.
HOST_TROUBLED = (ERROR, UNREACHABLE)
# Hosts that may carry VMs: each overlay's peers (a VM may be placed or moved there).
HOST_NETWORK_PEERS = (READY, MAINTENANCE, DISABLED, UNREACHABLE)

PENDING = "pending"
SUCCEEDED, FAILED, CANCELED, INTERRUPTED = "succeeded", "failed", "canceled", "interrupted"
OPERATION = ChoiceSet(
    _plain(PENDING, "info"),
    _plain(RUNNING, "success"),
    _plain(SUCCEEDED, "success"),
    _plain(FAILED, "danger"),
    _plain(CANCELED, "secondary"),
    _plain(INTERRUPTED, "warning"),
)
OPERATION_ACTIVE = (PENDING, RUNNING)
OPERATION_TERMINAL = (SUCCEEDED, FAILED, CANCELED, INTERRUPTED)
# Ended without succeeding: may be retried or re-checked.
OPERATION_UNSUCCESSFUL = (FAILED, INTERRUPTED, CANCELED)
# A controller operation that ended so warns on the overview (a cancel was asked for).
OPERATION_WARNING = (FAILED, INTERRUPTED)

# What an active operation waits for, under its progress bar when it counts no tasks.
OPERATION_WAITING = {PENDING: "waiting for a worker", RUNNING: "working"}
# A login attempt's outcome: counted (pending) until its password is checked, then failed or gone.
LOGIN_PENDING, LOGIN_FAILED = PENDING, FAILED

# An API token's state (derived from its dates, never stored).
TOKEN = ChoiceSet(
    _plain("active", "success"),
    _plain("expired", "warning"),
    _plain("revoked", "secondary"),
)

# Roles: admins and operators run the cluster; a member uses their projects' VMs.
ADMIN, OPERATOR, MEMBER = "admin", "operator", "member"
ROLE = ChoiceSet(_plain(ADMIN, "danger"), _plain(OPERATOR, "primary"), _plain(MEMBER, "info"))

# How a host mounts the repository.
NFS, BIND = "nfs", "bind"
SHARE = ChoiceSet(
    Choice(NFS, "NFS (the controller's export)", "primary"),
    Choice(BIND, "Bind mount (same machine)", "secondary"),
)

# What a live page shows for a row whose VM or host no longer exists.
GONE = _plain("removed", "light")

# The states each kind may start from (its claim checks them in the same compare-and-swap that
# takes the task; pages show an action's button in these states only).
VM_STARTABLE = (STOPPED, ERROR, UNKNOWN)
VM_STOPPABLE = (RUNNING, UNKNOWN, ERROR)
VM_REMOVABLE = (STOPPED, RUNNING, ERROR, UNKNOWN)
VM_MIGRATABLE = (RUNNING, STOPPED)
# memory and vCPUs change while stopped; a disk grows stopped or running (the service says which)
VM_RESIZABLE = (STOPPED, RUNNING)
VM_SAVABLE = (STOPPED,)  # its disk read whole: nothing may write it meanwhile
VM_ATTACHABLE = (STOPPED, RUNNING)  # a volume goes into the definition, live too when running
VOLUME_ATTACHABLE = (AVAILABLE,)
VOLUME_DETACHABLE = (IN_USE, ERROR)  # error: an attach that could not be undone
VOLUME_GROWABLE = (AVAILABLE, IN_USE)
VOLUME_REMOVABLE = (AVAILABLE, MISSING, ERROR)
VM_SNAPSHOTTABLE = (STOPPED, RUNNING)  # running: the guest agent freezes its file systems
VM_REVERTIBLE = (STOPPED,)
SNAPSHOT_REMOVABLE = (READY, ERROR)
HOST_DRAINABLE = (READY, DISABLED, MAINTENANCE, ERROR)

# Every set whose words are badges, for the colour and label tables the pages are given.
BADGES = (
    VM,
    HOST,
    OPERATION,
    TOKEN,
    VM_TASK,
    HOST_TASK,
    VOLUME,
    VOLUME_TASK,
    SNAPSHOT,
    ChoiceSet(GONE),
)


def _table(attribute):
    """{word: attribute} over every badge set (a word in several sets means one thing)."""
    table = {}
    for choice_set in BADGES:
        for choice in choice_set.items():
            table.setdefault(choice.value, getattr(choice, attribute))
    return table


# Every set of words this module defines, by name; WORDS: every word they hold.
CHOICE_SETS = {
    "VM": VM,
    "VM_TASK": VM_TASK,
    "HOST": HOST,
    "HOST_TASK": HOST_TASK,
    "VOLUME": VOLUME,
    "VOLUME_TASK": VOLUME_TASK,
    "SNAPSHOT": SNAPSHOT,
    "OPERATION": OPERATION,
    "TOKEN": TOKEN,
    "ROLE": ROLE,
    "SHARE": SHARE,
}
WORDS = frozenset(word for choice_set in CHOICE_SETS.values() for word in choice_set) | {GONE.value}

COLOURS = _table("colour")
LABELS = _table("label")


def colour(word):
    """The badge colour of any state word ('light' when unknown)."""
    return COLOURS.get(word or "", "light")


def label(word):
    """The label of any state word (the word itself when unknown)."""
    return LABELS.get(word or "", word or "-")


def served():
    """What the pages' scripts are given (base.html serves it as JSON): colours, labels, the
    active operation statuses and the word for a row gone."""
    return {
        "colours": COLOURS,
        "labels": LABELS,
        "active": list(OPERATION_ACTIVE),
        "gone": GONE.value,
    }


def sql_in(words):
    """A parameterized IN list for words: ('(?, ?)', (word, word))."""
    words = tuple(words)
    return "(" + ", ".join("?" for _ in words) + ")", words


# What the hypervisor adapter reports about a domain: its word for each of libvirt's domain
# states (VIR_DOMAIN_<NAME>); a state libvirt adds later reads as "other".
DOMAIN_RUNNING, DOMAIN_PAUSED, DOMAIN_STOPPED, DOMAIN_OTHER = (
    "running",
    "paused",
    "stopped",
    "other",
)
LIBVIRT_DOMAIN = {
    "running": DOMAIN_RUNNING,
    "blocked": DOMAIN_RUNNING,  # waiting on a resource: up
    "shutdown": DOMAIN_RUNNING,  # still up while the guest shuts down
    "paused": DOMAIN_PAUSED,
    "pmsuspended": DOMAIN_PAUSED,  # suspended by the guest's power management: memory kept
    "shutoff": DOMAIN_STOPPED,
    "crashed": DOMAIN_OTHER,  # QEMU is gone: nothing runs
    "nostate": DOMAIN_OTHER,
}


def vm_state(domain_state: str | None) -> str:
    """A VM's state from its domain's, in the hypervisor adapter's words (`running`, `paused`,
    `stopped`, `other`; None: no such domain). A paused domain (suspended, or left paused by a
    migration that stopped at its switch-over) still holds its guest and memory: running.
    No domain where the VM should be is an error; anything else is stopped."""
    if domain_state is None:
        return ERROR
    return RUNNING if domain_state in (DOMAIN_RUNNING, DOMAIN_PAUSED) else STOPPED
