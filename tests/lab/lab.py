"""Lab hosts: each one a mount and network namespace running its own virtlogd, libvirtd and sshd.

Run as root from the repository root:

    .venv/bin/python tests/lab/lab.py up N | down | status

Host N is network namespace ``nube-labN`` (``ip netns exec nube-labN ...``), with its own sudo
user ``nube-labN``; its sshd is reached from the machine at 127.0.0.(N+1):22 through a forwarder
(forward.py). Hosts reach each other over an underlay that exists only inside the lab's
namespaces: interface ``data0`` with 198.18.0.(N+1)/24 in each host, joined by a bridge in the
lab's own underlay namespace. Everything the lab makes sits under ``NUBE_LAB_DIR`` (default
/tmp/nube-lab) or is named from it, so ``down`` from another process finds it. See
docs/lab-notes.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Host folder → path it is bind-mounted over inside the host's namespace.
BIND_MOUNTS = {
    "run": "/run",
    "var-lib-libvirt": "/var/lib/libvirt",
    "etc-libvirt": "/etc/libvirt",
    "var-log-libvirt": "/var/log/libvirt",
    "fstab": "/etc/fstab",
    "var-lib-apt": "/var/lib/apt",
}
# /mnt stays shared: ansible.posix.mount works out a bind mount's source from the parent mount,
# and gets it wrong (so re-mounts on every run) when the mount point's parent is itself a bind
# mount. Hosts' mounts at /mnt/iaas are still private to each namespace.
PORTS_PER_HOST = 100  # VNC and migration ports of one lab host
LIBVIRTD_SETTINGS = {
    # No D-Bus, so no polkit: access rests on membership of group libvirt, as on a host
    # where polkit allows that group.
    "unix_sock_group": '"libvirt"',
    "unix_sock_rw_perms": '"0770"',
    "auth_unix_rw": '"none"',
    "log_outputs": '"3:file:/var/log/libvirt/libvirtd.log"',
}
# Folders the plays create on the filesystem the hosts share; down removes them (when empty)
# if they did not exist before the lab.
SHARED_FOLDERS = ["/mnt/iaas"]
# The underlay: RFC 2544's benchmarking range, which no real network routes.
DATA_PREFIX = "198.18.0"
DATA_PREFIX_LENGTH = 24
UNDERLAY_MTU = 1500
UNDERLAY_BRIDGE = "br0"
DATA_INTERFACE = "data0"
NETNS_DIR = Path("/run/netns")
# Lab tests name what they make in the machine's namespace (nftables tables) with this prefix
# and their pid, so that a down finds what a crashed one left.
NFT_TABLE_PREFIX = "nube_lab_"
FORWARDER = Path(__file__).with_name("forward.py")
DAEMON_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
APT_STAMP_AHEAD = 7 * 24 * 3600.0
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def lab_dir() -> Path:
    """Return the folder that holds all lab state."""
    return Path(os.environ.get("NUBE_LAB_DIR", "/tmp/nube-lab"))


def host_dir(index: int) -> Path:
    """Return host `index`'s folder."""
    return lab_dir() / f"host{index}"


def host_address(index: int) -> str:
    """Return the loopback address host `index`'s sshd listens on."""
    return f"127.0.0.{index + 1}"


def host_netns(index: int) -> str:
    """Return the name of host `index`'s network namespace (unique across labs: so is index)."""
    return f"nube-lab{index}"


def data_address(index: int) -> str:
    """Return host `index`'s address on the lab's underlay (its data address)."""
    return f"{DATA_PREFIX}.{index + 1}"


def underlay_netns() -> str:
    """Return the name of this lab's underlay namespace, derived from the lab's folder so that
    two labs side by side have one each and a down from another process finds it."""
    digest = hashlib.sha256(os.path.abspath(lab_dir()).encode()).hexdigest()[:8]
    return f"nube-lab-underlay-{digest}"


def underlay_port(index: int) -> str:
    """Return the name of host `index`'s veth end on the underlay bridge."""
    return f"lab{index}"


def netns_exists(name: str) -> bool:
    """Tell whether a named network namespace exists."""
    return (NETNS_DIR / name).exists()


def host_user(index: int) -> str:
    """Return host `index`'s sudo user name."""
    return f"nube-lab{index}"


def run(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command and, when `check`, raise with its error output if it fails."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    result = subprocess.run(args, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{shlex.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def read_pid(path: Path) -> int | None:
    """Read a pid file, or None when it is missing or empty."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int | None, name: str = "") -> bool:
    """Tell whether `pid` runs a process whose command line contains `name`."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    # A zombie has an empty command line: it is gone for our purposes.
    return bool(cmdline) and name in cmdline


def keeper_pid(index: int) -> int | None:
    """Return the pid of the process that keeps host `index`'s namespace, if it runs."""
    pid = read_pid(host_dir(index) / "keeper.pid")
    return pid if process_alive(pid, "sleep") else None


def in_host(index: int, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a command as root inside host `index`'s mount and network namespaces."""
    return run("nsenter", "-t", str(keeper_pid(index)), "-m", "-n", "--", *args, **kwargs)


def forwarder_pid(index: int) -> int | None:
    """Return the pid of host `index`'s SSH forwarder, if it runs."""
    pid = read_pid(host_dir(index) / "forwarder.pid")
    return pid if process_alive(pid, FORWARDER.name) else None


def daemon_pids(index: int) -> dict[str, int | None]:
    """Return the live pids of host `index`'s daemons (None for one that is not running)."""
    run_dir = host_dir(index) / "run"
    pidfiles = {"sshd": "sshd.pid", "libvirtd": "libvirtd.pid", "virtlogd": "virtlogd.pid"}
    pids = {}
    for name, pidfile in pidfiles.items():
        pid = read_pid(run_dir / pidfile)
        pids[name] = pid if process_alive(pid, name) else None
    return pids


def fix_kvm_permissions() -> None:
    """Give /dev/kvm the owner and mode udev gives it on a normal host."""
    # Without this QEMU (group kvm) cannot open it and libvirt re-probes QEMU on every call.
    if os.path.exists("/dev/kvm"):
        # No group kvm means no QEMU package yet: the readiness check will say what is missing.
        with contextlib.suppress(LookupError):
            shutil.chown("/dev/kvm", group="kvm")
            os.chmod("/dev/kvm", 0o660)


def record_shared_folders() -> None:
    """Note which shared folders the plays may create that do not exist yet."""
    record = lab_dir() / "shared-folders"
    if not record.exists():
        record.write_text(
            "".join(f"{path}\n" for path in SHARED_FOLDERS if not os.path.exists(path))
        )


def remove_shared_folders() -> None:
    """Remove the empty shared folders that appeared while the lab ran."""
    record = lab_dir() / "shared-folders"
    if record.exists():
        for path in record.read_text().split():
            with contextlib.suppress(OSError):
                os.rmdir(path)


@contextlib.contextmanager
def lab_lock() -> Iterator[None]:
    """Hold an exclusive lock on the lab folder, so that two ups or downs never interleave."""
    lab_dir().mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(lab_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def make_host_files(index: int) -> None:
    """Create host `index`'s folders, libvirt configuration, fstab and sshd configuration."""
    base = host_dir(index)
    base.mkdir(mode=0o755, parents=True)
    # QEMU runs as libvirt-qemu and needs search permission on the folders above its files.
    os.chmod(lab_dir(), 0o755)
    (base / "run" / "sshd").mkdir(mode=0o755, parents=True)
    (base / "var-log-libvirt").mkdir(mode=0o700)
    shutil.copytree("/var/lib/libvirt", base / "var-lib-libvirt", symlinks=True)
    shutil.copytree("/etc/libvirt", base / "etc-libvirt", symlinks=True)
    shutil.copyfile("/etc/fstab", base / "fstab")
    copy_apt_lists(base / "var-lib-apt")
    configure_libvirt(base / "etc-libvirt", index)
    configure_sshd(index)


def copy_apt_lists(target: Path) -> None:
    """Give a host its own /var/lib/apt: the machine's package lists (hard links where they
    can be), marked as just updated."""

    # A host's namespace reaches no mirror, so apt's cache_valid_time in the plays must find
    # the lists fresh: the stamp the apt module reads is dated a week ahead. The packages
    # themselves are the machine's, installed already. apt replaces list files by renaming,
    # so a host's apt-get update would never write through a link to the machine's.
    def link_or_copy(source, destination):
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)

    shutil.copytree("/var/lib/apt", target, symlinks=True, copy_function=link_or_copy)
    stamp = target / "periodic" / "update-success-stamp"
    stamp.parent.mkdir(exist_ok=True)
    stamp.touch()
    ahead = time.time() + APT_STAMP_AHEAD
    os.utime(stamp, (ahead, ahead))


def configure_libvirt(etc: Path, index: int) -> None:
    """Set the lab's libvirtd.conf and qemu.conf settings and drop any autostarted network."""
    set_options(etc / "libvirtd.conf", LIBVIRTD_SETTINGS)
    set_options(etc / "qemu.conf", qemu_ports(index))
    # Lab hosts use network "none"; a default network would need dnsmasq and iptables.
    autostart = etc / "qemu" / "networks" / "autostart"
    if autostart.is_dir():
        for link in autostart.iterdir():
            link.unlink()


def set_options(conf: Path, settings: dict) -> None:
    """Write `key = value` lines into a libvirt configuration file, replacing earlier ones."""
    kept = [
        line
        for line in (conf.read_text() if conf.exists() else "").splitlines()
        if line.split("=")[0].strip() not in settings
    ]
    kept += [f"{key} = {value}" for key, value in settings.items()]
    conf.write_text("\n".join(kept) + "\n")


def qemu_ports(index: int) -> dict:
    """Host `index`'s own VNC and migration port ranges: lab hosts share one network
    namespace, so two libvirtd daemons would otherwise hand out the same port."""
    display = 20000 + (index - 1) * PORTS_PER_HOST  # clear of 6080 (the console proxy)
    migration = 49152 + (index - 1) * PORTS_PER_HOST
    return {
        "remote_display_port_min": display,
        "remote_display_port_max": display + PORTS_PER_HOST - 1,
        "migration_port_min": migration,
        "migration_port_max": migration + PORTS_PER_HOST - 1,
    }


def configure_sshd(index: int) -> None:
    """Write host `index`'s sshd host key and sshd_config."""
    ssh = host_dir(index) / "ssh"
    ssh.mkdir(mode=0o700)
    key = ssh / "ssh_host_ed25519_key"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host_user(index), "-f", str(key))
    (ssh / "sshd_config").write_text(
        f"ListenAddress {host_address(index)}:22\n"
        f"HostKey {key}\n"
        "PidFile /run/sshd.pid\n"
        f"AllowUsers {host_user(index)}\n"
        "PermitRootLogin no\n"
        "PasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "UsePAM yes\n"
        "PrintMotd no\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )


def add_user(index: int) -> str:
    """Create host `index`'s sudo user with a fresh random password and return the password."""
    user = host_user(index)
    if subprocess.run(["getent", "passwd", user], capture_output=True).returncode == 0:
        # Left over by a lab that crashed before its down: start again from a clean user.
        run("userdel", user)
    home = host_dir(index) / "home"
    run(
        "useradd",
        "--create-home",
        "--home-dir",
        str(home),
        "--shell",
        "/bin/bash",
        "--groups",
        "sudo",
        "--comment",
        f"Nube lab host {index}",
        user,
    )
    (host_dir(index) / "user-created").touch()
    password = secrets.token_urlsafe(16)
    run("chpasswd", input=f"{user}:{password}\n")
    password_file = host_dir(index) / "password"
    password_file.write_text(password)
    password_file.chmod(0o600)
    return password


def start_keeper(index: int) -> int:
    """Start the process that holds host `index`'s mount and network namespaces, name the
    network namespace, and return the keeper's pid."""
    pidfile = host_dir(index) / "keeper.pid"
    script = f"echo $$ > {shlex.quote(str(pidfile))}; exec sleep infinity"
    # setsid -f detaches it from us, so it outlives this process and init reaps it.
    run(
        "setsid",
        "-f",
        "unshare",
        "--mount",
        "--net",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        # Its own output goes nowhere: a pipe held open by it would keep run() waiting.
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        capture_output=False,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = keeper_pid(index)
        if pid:
            run("ip", "netns", "attach", host_netns(index), str(pid))
            run("ip", "-n", host_netns(index), "link", "set", "lo", "up")
            return pid
        time.sleep(0.05)
    raise RuntimeError(f"host {index}: the namespace keeper did not start")


def ensure_underlay() -> None:
    """Make the lab's underlay namespace and its bridge unless they exist."""
    name = underlay_netns()
    if not netns_exists(name):
        run("ip", "netns", "add", name)
    (lab_dir() / "underlay").write_text(name + "\n")
    bridge = UNDERLAY_BRIDGE
    if run("ip", "-n", name, "link", "show", bridge, check=False).returncode != 0:
        run("ip", "-n", name, "link", "add", bridge, "mtu", str(UNDERLAY_MTU), "type", "bridge",
            "forward_delay", "0", "stp_state", "0")  # fmt: skip
    run("ip", "-n", name, "link", "set", bridge, "up")


def connect_to_underlay(index: int) -> None:
    """Give host `index` its data0 on the underlay bridge, with its data address."""
    underlay, netns, port = underlay_netns(), host_netns(index), underlay_port(index)
    # Both ends are made inside namespaces (ip -n, peer ... netns): neither ever exists in
    # the machine's own.
    run("ip", "-n", underlay, "link", "add", port, "mtu", str(UNDERLAY_MTU), "type", "veth",
        "peer", "name", DATA_INTERFACE, "mtu", str(UNDERLAY_MTU), "netns", netns)  # fmt: skip
    run("ip", "-n", underlay, "link", "set", port, "master", UNDERLAY_BRIDGE, "up")
    address = f"{data_address(index)}/{DATA_PREFIX_LENGTH}"
    run("ip", "-n", netns, "addr", "add", address, "dev", DATA_INTERFACE)
    run("ip", "-n", netns, "link", "set", DATA_INTERFACE, "up")


def start_forwarder(index: int) -> int:
    """Start host `index`'s forwarder from 127.0.0.(N+1):22 here to its sshd inside its
    namespace, detached; return its pid once it listens."""
    address = host_address(index)
    pidfile = host_dir(index) / "forwarder.pid"
    with open(host_dir(index) / "forwarder.log", "a") as log:
        run(
            "setsid", "-f", sys.executable, str(FORWARDER), address, "22",
            str(NETNS_DIR / host_netns(index)), address, "22", str(pidfile),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, capture_output=False,
        )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = forwarder_pid(index)
        if pid:
            return pid
        time.sleep(0.05)
    raise RuntimeError(f"host {index}: the SSH forwarder did not start, see {log.name}")


def mount_host_files(index: int) -> None:
    """Bind-mount host `index`'s folders and fstab over the system's, inside its namespace,
    and mount a sysfs of its network namespace on /sys."""
    for source, target in BIND_MOUNTS.items():
        in_host(index, "mount", "--bind", str(host_dir(index) / source), target)
    # A sysfs shows the network namespace of whoever mounts it: this one shows the host's own
    # interfaces under /sys/class/net, where libvirt looks for bridges. It hides the cgroup
    # mounts below /sys, so they are moved onto it from a holding place.
    hold = host_dir(index) / "cgroup-hold"
    hold.mkdir(mode=0o700, exist_ok=True)
    in_host(index, "mount", "--rbind", "/sys/fs/cgroup", str(hold))
    in_host(index, "mount", "-t", "sysfs", "sysfs", "/sys")
    in_host(index, "mount", "--move", str(hold), "/sys/fs/cgroup")


def start_daemons(index: int) -> None:
    """Start virtlogd, libvirtd and sshd inside host `index`'s namespace."""
    ssh = host_dir(index) / "ssh"
    commands = [
        ["virtlogd", "-d"],
        ["libvirtd", "-d"],
        ["/usr/sbin/sshd", "-f", str(ssh / "sshd_config"), "-E", str(ssh / "sshd.log")],
    ]
    with open(host_dir(index) / "daemons.log", "a") as log:
        for command in commands:
            # Each daemonizes itself; their pid files land in the host's own /run. Output goes
            # to a file: a pipe inherited by a daemon would keep run() waiting for its end.
            in_host(
                index,
                *command,
                env=DAEMON_ENV,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                capture_output=False,
            )


def write_known_hosts() -> None:
    """Write the lab's own known_hosts from the host keys it generated."""
    lines = []
    for index in host_indexes():
        pub = host_dir(index) / "ssh" / "ssh_host_ed25519_key.pub"
        if pub.exists():
            key_type, key = pub.read_text().split()[:2]
            lines.append(f"{host_address(index)} {key_type} {key}\n")
    (lab_dir() / "known_hosts").write_text("".join(lines))


def ssh_sudo(index: int, command: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """Run `command` with sudo on host `index` over password SSH, as its user would."""
    password = (host_dir(index) / "password").read_text()
    ssh_options = [
        f"UserKnownHostsFile={lab_dir() / 'known_hosts'}",
        "StrictHostKeyChecking=yes",
        "PreferredAuthentications=password",
        "PubkeyAuthentication=no",
        "ConnectTimeout=5",
        "LogLevel=ERROR",
    ]
    args = ["sshpass", "-e", "ssh"]
    for option in ssh_options:
        args += ["-o", option]
    args += [f"{host_user(index)}@{host_address(index)}", f"sudo -S -p '' {command}"]
    env = {**os.environ, "SSHPASS": password}
    return subprocess.run(
        args, input=password + "\n", env=env, capture_output=True, text=True, timeout=timeout
    )


def wait_ready(index: int) -> None:
    """Wait until host `index` answers `virsh version` through SSH and sudo."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        try:
            result = ssh_sudo(index, "virsh -c qemu:///system version")
        except subprocess.TimeoutExpired:
            last = "timed out"
            continue
        if result.returncode == 0 and "libvirt" in result.stdout:
            return
        last = result.stderr.strip()
        time.sleep(0.3)
    raise RuntimeError(f"host {index} did not answer over SSH: {last}")


def host_running(index: int) -> bool:
    """Tell whether host `index`'s namespace and all its daemons run."""
    return (
        keeper_pid(index) is not None
        and all(daemon_pids(index).values())
        and forwarder_pid(index) is not None
        and netns_exists(host_netns(index))
    )


def host_info(index: int) -> dict:
    """Return what a test needs to reach host `index`."""
    pub = (host_dir(index) / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
    return {
        "name": f"lab{index}",
        "address": host_address(index),
        "user": host_user(index),
        "password": (host_dir(index) / "password").read_text(),
        "host_key": f"{pub[0]} {pub[1]}",
        "data_address": data_address(index),
        "netns": host_netns(index),
    }


def start_host(index: int) -> None:
    """Create and start host `index` from nothing."""
    make_host_files(index)
    add_user(index)
    start_keeper(index)
    connect_to_underlay(index)
    mount_host_files(index)
    start_daemons(index)
    start_forwarder(index)


def up(n: int) -> list[dict]:
    """Make sure hosts 1..n run and answer, and return their address, user and password.
    NUBE_LAB_FIRST=k numbers them from k instead (addresses, users and ports of their own),
    so that a second lab, under its own NUBE_LAB_DIR, runs beside the first."""
    if n < 1 or n > 200:
        raise ValueError("the lab runs between 1 and 200 hosts")
    first = int(os.environ.get("NUBE_LAB_FIRST", "1"))
    indexes = range(first, first + n)
    with lab_lock():
        fix_kvm_permissions()
        record_shared_folders()
        ensure_underlay()
        for index in indexes:
            if not host_running(index):
                stop_host(index)  # clears whatever a half-started or crashed host left
                start_host(index)
        write_known_hosts()
        for index in indexes:
            wait_ready(index)
        return [host_info(index) for index in indexes]


def host_indexes() -> list[int]:
    """Return the indexes of the hosts that have a folder in the lab."""
    if not lab_dir().is_dir():
        return []
    names = [p.name for p in lab_dir().iterdir() if p.is_dir() and p.name.startswith("host")]
    return sorted(int(name[4:]) for name in names if name[4:].isdigit())


def destroy_guests(index: int) -> None:
    """Force off every running domain of host `index`."""
    listing = in_host(index, "virsh", "-c", "qemu:///system", "list", "--name", check=False)
    for name in listing.stdout.split():
        in_host(index, "virsh", "-c", "qemu:///system", "destroy", name, check=False)


def terminate(pids: list[int]) -> None:
    """Send SIGTERM to `pids`, then SIGKILL to any still alive after STOP_TIMEOUT."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            pids = [pid for pid in pids if process_alive(pid)]
            if not pids:
                return
            time.sleep(0.05)


def processes_using(index: int) -> list[int]:
    """Return pids of processes that see host `index`'s mounts (its namespace or a child's)
    or run in its network namespace (`ip netns exec nube-labN ...` included)."""
    # libvirt starts QEMU in a private copy of the host's namespace, so comparing
    # mount namespace ids alone would miss it; the bind mounts' source folders show in both.
    marker = f" {host_dir(index)}/"
    netns = None
    with contextlib.suppress(OSError):
        info = os.stat(NETNS_DIR / host_netns(index))
        netns = (info.st_dev, info.st_ino)
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and uses_host(entry, marker, netns)
    ]


def uses_host(proc: Path, marker: str, netns: tuple[int, int] | None) -> bool:
    """Tell whether process `proc` (its /proc folder) runs in network namespace `netns` or
    has a mount whose line shows `marker`."""
    with contextlib.suppress(OSError):
        info = os.stat(proc / "ns" / "net")
        if netns and (info.st_dev, info.st_ino) == netns:
            return True
    with contextlib.suppress(OSError):
        return marker in (proc / "mountinfo").read_text()
    return False


def unmount_host_files(index: int) -> None:
    """Unmount host `index`'s bind mounts inside its namespace."""
    for target in reversed(list(BIND_MOUNTS.values())):
        in_host(index, "umount", "--lazy", target, check=False)


def disconnect_from_underlay(index: int) -> None:
    """Delete host `index`'s veth pair and its network namespace's name (the namespace goes
    with the last process in it)."""
    if netns_exists(underlay_netns()):
        run("ip", "-n", underlay_netns(), "link", "del", underlay_port(index), check=False)
    if netns_exists(host_netns(index)):
        run("ip", "netns", "delete", host_netns(index), check=False)


def remove_underlay() -> None:
    """Delete the lab's underlay namespace (and so its bridge)."""
    if netns_exists(underlay_netns()):
        run("ip", "netns", "delete", underlay_netns(), check=False)


def remove_stale_nft_tables() -> None:
    """Delete nftables tables that lab tests named `nube_lab_..._<pid>` whose process is gone
    (a test that crashed before its own clean-up)."""
    listing = run("nft", "-j", "list", "tables", check=False)
    if listing.returncode != 0:
        return
    for item in json.loads(listing.stdout).get("nftables", []):
        table = item.get("table", {})
        name, _, pid = table.get("name", "").rpartition("_")
        if name.startswith(NFT_TABLE_PREFIX) and pid.isdigit() and not process_alive(int(pid)):
            run("nft", "delete", "table", table["family"], table["name"], check=False)


def remove_user(index: int) -> None:
    """Delete host `index`'s user if the lab created it."""
    if (host_dir(index) / "user-created").exists():
        subprocess.run(["userdel", host_user(index)], capture_output=True)


def stop_host(index: int) -> None:
    """Stop host `index`'s guests and daemons, unmount, delete its user and its folder."""
    if keeper_pid(index):
        destroy_guests(index)
    terminate([pid for pid in [*daemon_pids(index).values(), forwarder_pid(index)] if pid])
    keeper = keeper_pid(index)
    terminate([pid for pid in processes_using(index) if pid != keeper])
    if keeper:
        unmount_host_files(index)
        terminate([keeper])
    disconnect_from_underlay(index)
    remove_user(index)
    shutil.rmtree(host_dir(index), ignore_errors=True)


def down() -> None:
    """Stop every lab host and delete the lab folder."""
    if not lab_dir().exists():
        return
    with lab_lock():
        for index in host_indexes():
            stop_host(index)
        remove_underlay()
        remove_stale_nft_tables()
        remove_shared_folders()
    shutil.rmtree(lab_dir(), ignore_errors=True)


def status() -> list[dict]:
    """Return each lab host's address, user and which of its processes run."""
    report = []
    for index in host_indexes():
        pids = daemon_pids(index)
        report.append(
            {
                "name": f"lab{index}",
                "address": host_address(index),
                "user": host_user(index),
                "data_address": data_address(index),
                "netns": host_netns(index) if netns_exists(host_netns(index)) else None,
                "keeper": keeper_pid(index),
                **pids,
                "forwarder": forwarder_pid(index),
                "up": host_running(index),
            }
        )
    return report


def main(argv: list[str]) -> int:
    """Command-line entry point: up N | down | status."""
    if os.geteuid() != 0:
        print("lab hosts need root", file=sys.stderr)
        return 2
    if len(argv) == 2 and argv[0] == "up" and argv[1].isdigit():
        for host in up(int(argv[1])):
            print(json.dumps(host), flush=True)
        return 0
    if argv == ["down"]:
        down()
        return 0
    if argv == ["status"]:
        for host in status():
            print(json.dumps(host))
        return 0
    print("usage: lab.py up N | down | status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
