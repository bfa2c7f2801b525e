"""A TCP listener and a TCP probe, for namespaces where no server or client is installed.

Usage: python3 tcp_probe.py listen PORT   (prints "listening", then answers "ok" to each
                                          connection until killed)
       python3 tcp_probe.py connect ADDRESS PORT [SECONDS]
                                         (exit 0 when the answer arrived within SECONDS,
                                          default 1.5; 1 otherwise)"""

import socket
import sys


def listen(port):
    """Answer every connection on port with "ok"."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(16)
    print("listening", flush=True)
    while True:
        connection, _ = server.accept()
        with connection:
            connection.sendall(b"ok")


def connect(address, port, seconds):
    """0 when address:port answered "ok" within seconds, else 1."""
    try:
        with socket.create_connection((address, port), timeout=seconds) as connection:
            return 0 if connection.recv(2) == b"ok" else 1
    except OSError:
        return 1


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen(int(sys.argv[2]))
    else:
        seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 1.5
        sys.exit(connect(sys.argv[2], int(sys.argv[3]), seconds))
