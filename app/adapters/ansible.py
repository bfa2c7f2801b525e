"""The real provisioner: playbooks through ansible-runner, one private data dir per run."""

import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import ansible_runner
import ansible_runner.interface
import yaml

from ..addresses import NAME_RE, check_address, check_user
from ..errors import InvalidInput, OperationCanceled, OperationFailed
from .known_hosts import KnownHosts

# How SSH (through sshpass) and sudo say that the password given was wrong.
PASSWORD_REFUSED = re.compile(
    r"Invalid/incorrect password|Incorrect sudo password|Missing sudo password"
    r"|incorrect password attempt|Permission denied \(publickey,password\)"
)
PASSWORD_PROMPTS = (r"^SSH password:\s*?$", r"^BECOME password.*:\s*?$")
FACTS_KEY = "nube_host"


def count_tasks(playbook_path):
    """How many tasks a playbook lists (blocks counted by their inner tasks), for progress."""

    def tasks_in(items):
        total = 0
        for item in items or []:
            if isinstance(item, dict) and "block" in item:
                total += tasks_in(item.get("block")) + tasks_in(item.get("rescue"))
                total += tasks_in(item.get("always"))
            else:
                total += 1
        return total

    plays = yaml.safe_load(Path(playbook_path).read_text()) or []
    return sum(
        tasks_in(p.get("pre_tasks")) + tasks_in(p.get("tasks")) + tasks_in(p.get("post_tasks"))
        for p in plays
        if isinstance(p, dict)
    )


class _EventLog:
    """Turns ansible-runner events into operation log lines and progress."""

    def __init__(self, log, progress, total):
        self.log = log or (lambda message, level="info": None)
        self.progress = progress
        self.total = total
        self.done = 0
        self.facts = {}
        self.failures = []

    def __call__(self, event):
        """Handle one event; returning True keeps ansible-runner's own artifact of it."""
        kind = event.get("event", "")
        data = event.get("event_data", {})
        host = data.get("host") or data.get("remote_addr") or ""
        task = data.get("task", "")
        if kind == "playbook_on_task_start":
            self._task_started()
        elif kind == "runner_on_ok":
            changed = data.get("res", {}).get("changed")
            self.log(f"{'changed' if changed else 'ok'}: [{host}] {task}")
        elif kind == "runner_on_skipped":
            self.log(f"skipping: [{host}] {task}")
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            self._failed(kind, data, host, task)
        elif kind == "playbook_on_stats":
            self._stats(data)
        return True

    def _task_started(self):
        self.done += 1
        if self.progress:
            self.progress(min(self.done, self.total), self.total)

    def _failed(self, kind, data, host, task):
        result = data.get("res", {})
        message = str(result.get("msg") or result.get("stderr") or result.get("reason") or "")
        word = "unreachable" if kind == "runner_on_unreachable" else "failed"
        if data.get("ignore_errors"):
            word = "failed (ignored)"
        else:
            self.failures.append((word, host, task, message.strip()))
        self.log(f"{word}: [{host}] {task}: {message.strip()}", "error")

    def _stats(self, data):
        artifact = data.get("artifact_data") or {}
        self.facts = artifact.get(FACTS_KEY, {}) or {}
        for stat in ("ok", "changed", "failures", "unreachable", "skipped"):
            counts = data.get(stat) or {}
            if counts:
                summary = ", ".join(f"{h}={n}" for h, n in sorted(counts.items()))
                self.log(f"recap {stat}: {summary}")


class AnsibleProvisioner:
    """Runs Nube's playbooks on the controller (local) or a host (SSH), never keeping secrets."""

    def __init__(self, plays_dir, work_dir, ssh_key, known_hosts, keep=50):
        self.plays_dir = Path(plays_dir).resolve()  # ansible-runner runs in its own folder
        self.work_dir = Path(work_dir)
        self.ssh_key = Path(ssh_key)
        self.known_hosts = Path(known_hosts)
        self.keep = keep
        self.known = KnownHosts(known_hosts)

    def host_key(self, address):
        """The host's SSH key: recorded in our known_hosts on first contact, checked after."""
        return self.known.ensure(address)

    def forget_host_key(self, address):
        """Drop a host's recorded key (when the host is removed or its add failed)."""
        self.known.forget(address)

    def accept_host_key(self, address, fingerprint):
        """Replace a host's recorded key by the one it offers now, whose fingerprint an admin
        confirmed; returns the new key text."""
        return self.known.replace(address, fingerprint)

    def _inventory(self, host):
        """An inventory for one host over SSH, or the controller itself."""
        if host is None:
            return {
                "all": {
                    "hosts": {
                        "controller": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": _system_python(),
                        }
                    }
                }
            }
        ssh_args = (
            f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes"
            " -o PreferredAuthentications=publickey,password"
            " -o ConnectTimeout=15"
        )
        values = {
            "ansible_host": check_address(host["address"]),
            "ansible_user": check_user(host["user"]),
            "ansible_ssh_common_args": ssh_args,
        }
        if self.ssh_key.exists():
            values["ansible_ssh_private_key_file"] = str(self.ssh_key)
        return {"all": {"hosts": {_inventory_name(host["name"]): values}}}

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
        """Run a playbook; returns the facts it reported (set_stats nube_host), or raises."""
        path = self.plays_dir / playbook
        if not path.is_file():
            raise InvalidInput(f"no playbook {playbook} in {self.plays_dir}")
        if host is not None:
            key = self.host_key(host["address"])
            if log:
                log(f"SSH host key of {host['address']}: {key}")
        self.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(prefix=f"{path.stem}-", dir=self.work_dir))
        events = _EventLog(log, progress, count_tasks(path))
        result = self._run_in(private, path, host, extravars, password, events, cancel, timeout)
        if result.status in ("canceled", "timeout"):
            _kill_leftovers(str(private))
        if result.status == "canceled":
            raise OperationCanceled(f"{playbook} canceled")
        if result.status != "successful" or result.rc != 0:
            if host is not None and any(f[0] == "unreachable" for f in events.failures):
                self.known.check_unchanged(host["address"])  # say so when the key changed
            raise OperationFailed(_failure_message(playbook, result, events))
        return events.facts

    def _run_in(self, private, path, host, extravars, password, events, cancel, timeout):
        """ansible-runner in its private folder, with only the environment a play needs."""
        options = {}
        if password:
            options["passwords"] = {prompt: password for prompt in PASSWORD_PROMPTS}
            options["cmdline"] = "--ask-pass --ask-become-pass" if host else "--ask-become-pass"
        # Inventory and variables as files whose every string is tagged !unsafe: they are data
        # (addresses, user names), and Ansible must never evaluate a template found in them.
        # ansible-runner passes env/extravars on with -e @file, so nothing is on a command line.
        _write_unsafe_yaml(private / "inventory" / "hosts.yml", self._inventory(host))
        _write_unsafe_yaml(private / "env" / "extravars", dict(extravars or {}))
        # SSH connection sharing per run, in a short path (sockets have a length limit): one
        # left over from an earlier run would outlive a removed key or a changed host key.
        control_dir = tempfile.mkdtemp(prefix="nube-cp-")
        try:
            runner = ansible_runner.interface.init_runner(
                private_data_dir=str(private),
                playbook=str(path),
                inventory=str(private / "inventory" / "hosts.yml"),
                envvars={
                    "ANSIBLE_HOST_KEY_CHECKING": "True",
                    "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_RETRY_FILES_ENABLED": "False",
                    "ANSIBLE_SSH_CONTROL_PATH_DIR": control_dir,
                    "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=5s",
                    "PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
                },
                event_handler=events,
                cancel_callback=(lambda: bool(cancel and cancel())),
                suppress_env_files=True,  # passwords never land in env/ files
                quiet=True,
                timeout=timeout,
                **options,
            )
            runner.config.env = playbook_env(runner.config.env)
            runner.run()
            return runner
        finally:
            shutil.rmtree(control_dir, ignore_errors=True)
            self._rotate()

    def _rotate(self):
        """Keep only the newest `keep` run folders."""
        runs = sorted(self.work_dir.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in runs[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)


KILL_ROUNDS = 20  # scans for what a stopped run left; a round that finds nothing ends them


def _kill_leftovers(marker):
    """Kill what a stopped run left behind: ansible's workers call setsid, so ansible-runner's
    kill of the main process group misses them and the tasks they run (found by the run's
    private folder in their command line, then by parentage). Again until a scan finds none:
    a worker may fork a task between a scan and its kill, and that child would live on."""
    for _ in range(KILL_ROUNDS):
        if not _kill_once(marker):
            return
        time.sleep(0.05)


def _kill_once(marker):
    """One scan and SIGKILL of the run's processes and their descendants; whether any."""
    parents, roots = {}, set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        if marker.encode() in command:
            roots.add(int(entry))
    victims, grew = set(roots), True
    while grew:
        children = {pid for pid, ppid in parents.items() if ppid in victims} - victims
        victims |= children
        grew = bool(children)
    victims.discard(os.getpid())
    for pid in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return bool(victims)


def _system_python():
    """The system interpreter (it has python3-apt, which the apt module needs)."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def _failure_message(playbook, result, events):
    """A one-line reason for a failed run, from its failed task when there is one."""
    if events.failures:
        word, host, task, message = events.failures[-1]
        if PASSWORD_REFUSED.search(message):
            return f"{playbook}: {host} refused the sudo user's password: {message}"
        if word == "unreachable":
            return f"{playbook}: host {host} unreachable: {message}"
        return f"{playbook} failed at '{task}' on {host}: {message}"
    return f"{playbook} ended {result.status} (rc {result.rc})"


# What a playbook's environment keeps of the worker's own: nothing else (NUBE_SECRET_KEY,
# NUBE_ADMIN_PASSWORD, a Redis URL with its password...) reaches ansible or the run folder,
# whose artifacts/<ident>/command file records the whole environment.
INHERITED_ENV = (
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LOGNAME",
    "TERM",
    "TMPDIR",
    "TZ",
    "USER",
)


def playbook_env(env):
    """The environment a run needs: what ansible-runner or Nube set, and a few harmless
    variables of the worker's; never the rest of the worker's environment."""
    return {
        key: value
        for key, value in env.items()
        if key in INHERITED_ENV or os.environ.get(key) != value
    }


class _Unsafe(str):
    """A string Ansible must take as data (dumped with the !unsafe tag)."""


class _UnsafeDumper(yaml.SafeDumper):
    """Dumps _Unsafe strings with the !unsafe tag."""


_UnsafeDumper.add_representer(
    _Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value))
)


def _tag_values(data):
    """data with every string value (not mapping keys) made _Unsafe."""
    if isinstance(data, dict):
        return {key: _tag_values(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_tag_values(value) for value in data]
    return _Unsafe(data) if isinstance(data, str) else data


def _write_unsafe_yaml(path, data):
    """Write data as YAML (mode 0600) with every string value tagged !unsafe."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.dump(_tag_values(data), handle, Dumper=_UnsafeDumper, default_flow_style=False)


def _inventory_name(name):
    """A host's name as an inventory host name (a name Nube validated: letters, digits, _.-)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidInput(f"host name {str(name)[:40]!r} cannot be an inventory name")
    return name
