"""The controller's known_hosts: host keys recorded on first contact, checked ever after.

Ansible, libvirt (libssh2) and the console's ssh tunnels all check host keys against this one
file, so what is recorded here decides which machine gets a host's secrets.
"""

import collections
import contextlib
import fcntl
import os
import subprocess
import tempfile
import threading
from pathlib import Path

from ..addresses import check_address
from ..errors import HostKeyChanged, HostUnreachable

KEY_TYPES = "ed25519,ecdsa,rsa"
# One lock per file, whichever object writes it (the provisioner's, the cluster's sync).
_LOCKS = collections.defaultdict(threading.Lock)


class KnownHosts:
    """Records, checks, replaces and forgets host keys in one known_hosts file."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = _LOCKS[str(self.path)]

    @contextlib.contextmanager
    def _locked(self):
        """This file to ourselves: other threads (a lock) and other processes (flock on
        known_hosts.lock: a consumer recording a key, another process's rebuild)."""
        with self._lock:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock

    def recorded(self, address):
        """The known_hosts lines recorded for an address ('' when none)."""
        address = check_address(address)
        if not self.path.exists():
            return ""
        found = subprocess.run(
            ["ssh-keygen", "-F", address, "-f", str(self.path)], capture_output=True, text=True
        )
        return "".join(
            line + "\n" for line in found.stdout.splitlines() if line and not line.startswith("#")
        )

    def scan(self, address):
        """The keys the machine at address offers now, as known_hosts lines for that address."""
        address = check_address(address)
        try:
            scan = subprocess.run(
                ["ssh-keyscan", "-T", "10", "-t", KEY_TYPES, "--", address],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except subprocess.TimeoutExpired:
            raise HostUnreachable(f"no SSH server answered at {address} within 30 s") from None
        # only lines for the name asked: a key is never recorded under another name
        lines = [
            line
            for line in scan.stdout.splitlines()
            if len(line.split()) == 3 and line.split()[0] == address
        ]
        if not lines:
            raise HostUnreachable(
                f"no SSH server answered at {address}: "
                f"{scan.stderr.strip()[:200] or 'no key offered'}"
            )
        return "".join(line + "\n" for line in lines)

    def ensure(self, address):
        """The host's keys ('type base64; ...'): recorded on first contact, checked after."""
        with self._locked():
            lines = self.recorded(address)
            if not lines:
                lines = self.scan(address)
                self._append(lines)
            return key_text(lines)

    def check_unchanged(self, address):
        """Raise HostKeyChanged when the machine at address offers none of the recorded keys."""
        recorded = self.recorded(address)
        if not recorded:
            return
        try:
            offered = self.scan(address)
        except HostUnreachable:
            return  # nothing answers: not a key change
        if not set(_keys(recorded)) & set(_keys(offered)):
            raise HostKeyChanged(address, fingerprints(recorded), fingerprints(offered))

    def replace(self, address, fingerprint):
        """Record the keys the machine now offers, when one of them has the fingerprint an admin
        confirmed; returns the new key text. Refuses when the fingerprint is not offered."""
        with self._locked():
            offered = self.scan(address)
            # only the key confirmed: ssh-keyscan asks each key type on its own connection, so
            # the other lines may come from whoever else answered
            confirmed = "".join(
                line + "\n"
                for line in offered.splitlines()
                if _sha256(line + "\n") == fingerprint.strip()
            )
            if not confirmed:
                raise HostKeyChanged(
                    address, [f"(confirmed) {fingerprint.strip()}"], fingerprints(offered)
                )
            self._forget(address)
            self._append(confirmed)
            return key_text(confirmed)

    def rewrite(self, merge):
        """Rewrite the file from merge({address: its lines}) -> {address: lines}, atomically
        (0600) and only when something changed."""
        with self._locked():
            old = self.path.read_text() if self.path.exists() else ""
            current = collections.defaultdict(str)
            for line in old.splitlines(keepends=True):
                if line.strip() and not line.startswith("#"):
                    current[line.split()[0]] += line
            new = "".join(lines for _, lines in sorted(merge(dict(current)).items()))
            if new == old:
                return
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".known_hosts.")
            with os.fdopen(fd, "w") as handle:  # mkstemp's file is 0600 from the start
                handle.write(new)
            os.replace(temp, self.path)

    def forget(self, address):
        """Drop a host's recorded keys (when the host is removed or its add failed)."""
        with self._locked():
            self._forget(check_address(address))

    def _forget(self, address):
        if self.path.exists():
            subprocess.run(["ssh-keygen", "-R", address, "-f", str(self.path)], capture_output=True)
            Path(f"{self.path}.old").unlink(missing_ok=True)  # ssh-keygen's backup copy

    def _append(self, lines):
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(lines)
        self.path.chmod(0o600)


def _keys(lines):
    """The 'type base64' pairs of known_hosts lines."""
    keys = []
    for line in lines.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#"):
            keys.append(f"{parts[1]} {parts[2]}")
    return keys


def key_text(lines):
    """The key part ('type base64') of known_hosts lines, joined for the host page."""
    return "; ".join(_keys(lines))


def _sha256(line):
    """The 'SHA256:…' fingerprint of one known_hosts line ('' when it has none)."""
    found = fingerprints(line)
    return found[0].split()[0] if found else ""


def fingerprints(lines):
    """SHA256 fingerprints ('SHA256:… (ED25519)') of known_hosts lines."""
    result = subprocess.run(
        ["ssh-keygen", "-l", "-f", "-"], input=lines, capture_output=True, text=True
    )
    found = []
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            found.append(f"{parts[1]} {parts[-1]}")
    return found
