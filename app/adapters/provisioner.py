"""The provisioner seam: runs a playbook against the controller or a host."""

from dataclasses import dataclass, field

from ..errors import HostKeyChanged, OperationCanceled, OperationFailed


@dataclass
class PlaybookRun:
    """One playbook run as a recording provisioner saw it (secrets left out)."""

    playbook: str
    host: dict | None
    extravars: dict
    had_password: bool


@dataclass
class RecordingProvisioner:
    """A fake for unit tests: records each run and returns configured facts, or fails."""

    facts: dict = field(default_factory=lambda: {"cpus": 4, "mem": 8192, "kvm": False})
    fail: dict = field(default_factory=dict)  # playbook name -> error message
    runs: list = field(default_factory=list)
    # address -> key a fake host offers now; recorded on first contact, like the real one
    offered_keys: dict = field(default_factory=dict)
    known_keys: dict = field(default_factory=dict)

    def run(
        self,
        playbook,
        *,
        host=None,
        extravars=None,
        password=None,
        log=None,
        cancel=None,
        progress=None,
        timeout=None,
    ):
        """Record the run; fail when told to; return the host facts for host_add."""
        extravars = dict(extravars or {})
        self.runs.append(
            PlaybookRun(playbook, dict(host) if host else None, extravars, password is not None)
        )
        if log:
            target = host["address"] if host else "controller"
            log(f"[recording] {playbook} on {target}")
        if progress:
            progress(1, 1)
        if cancel and cancel():
            raise OperationCanceled(f"{playbook} canceled")
        if playbook in self.fail:
            raise OperationFailed(self.fail[playbook])
        return dict(self.facts) if playbook == "host_add.yaml" else {}

    def host_key(self, address):
        """The key recorded for address (recorded on first contact); None for a keyless fake."""
        offered = self.offered_keys.get(address)
        if offered is None:
            return self.known_keys.get(address)
        recorded = self.known_keys.setdefault(address, offered)
        if recorded != offered:
            raise HostKeyChanged(address, [recorded], [offered])
        return recorded

    def forget_host_key(self, address):
        """Forget what was recorded for address."""
        self.known_keys.pop(address, None)

    def accept_host_key(self, address, fingerprint):
        """Record the offered key when the confirmed fingerprint is the offered key's."""
        offered = self.offered_keys.get(address)
        if offered is None or fingerprint != offered:
            raise HostKeyChanged(address, [f"(confirmed) {fingerprint}"], [offered or "nothing"])
        self.known_keys[address] = offered
        return offered
