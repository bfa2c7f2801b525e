"""Forward TCP connections from an address in this machine's network namespace to an address
inside another network namespace (a lab host's), copying bytes both ways. Standard library only.

    python forward.py LISTEN_ADDRESS LISTEN_PORT NETNS_PATH TARGET_ADDRESS TARGET_PORT PIDFILE

It binds and listens first (in the namespace it starts in), then enters NETNS_PATH's network
namespace, so every connection it makes from then on starts inside it, and writes its pid to
PIDFILE once it accepts. Stop it with SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
CHUNK = 65536


def enter_netns(path: str) -> None:
    """Move this process into the network namespace at `path` (Python 3.11 has no os.setns)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns {path}: {os.strerror(error)}")
    finally:
        os.close(fd)


def pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy source to sink until source's end of stream, then half-close sink; on an error,
    shut both down so that the other direction's copy ends too."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def serve(client: socket.socket, target: tuple[str, int]) -> None:
    """Join one accepted connection to a new connection to target, until both ends finish."""
    with client:
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError:
            return  # the client sees its connection closed, as with a refused one
        with upstream:
            upstream.settimeout(None)
            back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
            back.start()
            pump(client, upstream)
            back.join()


def write_pid(pidfile: str) -> None:
    """Write our pid to pidfile in one step, so a reader never sees it half written."""
    partial = f"{pidfile}.partial"
    with open(partial, "w") as out:
        out.write(f"{os.getpid()}\n")
    os.replace(partial, pidfile)


def main(argv: list[str]) -> int:
    """Listen here, enter the namespace, forward every connection there."""
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    listen_address, listen_port, netns, target_address, target_port, pidfile = argv
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((listen_address, int(listen_port)))
    server.listen(128)
    enter_netns(netns)  # threads started from here on are in it too
    write_pid(pidfile)
    target = (target_address, int(target_port))
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, target), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
