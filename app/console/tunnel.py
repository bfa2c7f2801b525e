"""SSH stdio tunnels to a VM's VNC server on its host, with the controller's key and known_hosts."""

import contextlib
import select
import socket
import subprocess
import time

from ..errors import NubeError


class TunnelError(NubeError):
    """The SSH tunnel to a host's VNC server could not be opened."""


def ssh_command(target, keyfile, known_hosts, timeout):
    """The ssh command line that connects its stdin/stdout to the VNC server on the host."""
    vnc = target.vnc_address
    vnc = f"[{vnc}]" if ":" in vnc else vnc
    options = {
        "IdentitiesOnly": "yes",  # the controller's key only, never an agent's
        "UserKnownHostsFile": known_hosts,  # the same host keys Ansible and libvirt check
        "GlobalKnownHostsFile": "/dev/null",
        "StrictHostKeyChecking": "yes",
        "BatchMode": "yes",  # no password or host key prompt, ever
        "ConnectTimeout": str(max(1, int(timeout))),
        "ServerAliveInterval": "15",
        "ControlPath": "none",
        "ExitOnForwardFailure": "yes",
        "LogLevel": "ERROR",
    }
    args = ["ssh", "-i", keyfile]
    for key, value in options.items():
        args += ["-o", f"{key}={value}"]
    return [*args, "-W", f"{vnc}:{target.vnc_port}", "-l", target.user, "--", target.address]


class Tunnel:
    """One open tunnel: `sock` carries the VNC byte stream; close() ends ssh."""

    def __init__(self, target, sock, process=None):
        self.target, self.sock, self.process = target, sock, process

    def close(self):
        """Close our end (ssh sees EOF and exits), then reap ssh, killing it if it lingers."""
        with contextlib.suppress(OSError):  # already closed by the other side
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None


def open_tunnel(target, keyfile, known_hosts, timeout=10.0):
    """Open `ssh -W` to the VM's VNC server and wait for the server's greeting.

    ssh's stdin and stdout are one end of a socket pair, so no port is opened on the
    controller at all (a forwarded TCP port, even on loopback, would let any local user reach
    the unauthenticated VNC server). ssh exits when the viewer disconnects.
    """
    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            ssh_command(target, keyfile, known_hosts, timeout),
            stdin=theirs,
            stdout=theirs,
            stderr=subprocess.PIPE,
            close_fds=True,
        )
    except OSError as exc:
        ours.close()
        raise TunnelError(f"cannot run ssh: {exc}") from None
    finally:
        theirs.close()
    tunnel = Tunnel(target, ours, process)
    # An RFB server speaks first ("RFB 003.008\n"): peek at it, so the viewer still gets it.
    greeting = _peek(ours, 3, timeout + 5)
    if greeting != b"RFB":
        if process.poll() is None:
            process.kill()
        process.wait()
        detail = process.stderr.read().decode(errors="replace").strip()
        tunnel.close()
        where = f"{target.user}@{target.address} to VNC port {target.vnc_port}"
        raise TunnelError(f"SSH tunnel {where} failed: {detail or 'no VNC greeting'}")
    return tunnel


def _peek(sock, size, timeout):
    """Up to `size` bytes waiting on sock, left unread: fewer on EOF or when time runs out."""
    deadline = time.monotonic() + timeout
    seen = b""
    while len(seen) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            break
        peeked = sock.recv(size, socket.MSG_PEEK)
        if not peeked:
            break  # EOF: ssh gave up
        if peeked == seen:
            time.sleep(0.01)  # part of it came; select says readable until more does
        seen = peeked
    return seen
