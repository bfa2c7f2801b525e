"""The provisioner seam: runs a playbook against the controller or a host."""

from dataclasses import dataclass, field

from ..errors import OperationCanceled, OperationFailed


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
        """The recording fake has no SSH; host keys are not checked."""
        return None

    def forget_host_key(self, address):
        """Nothing recorded, nothing to forget."""
