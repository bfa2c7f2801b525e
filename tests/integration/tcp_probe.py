"""TCP and UDP probes and a raw frame sender, for namespaces where no tool is installed.

Usage: python3 tcp_probe.py listen PORT   (prints "listening", then answers "ok" to each
                                          connection until killed)
       python3 tcp_probe.py connect ADDRESS PORT [SECONDS]
                                         (exit 0 when the answer arrived within SECONDS,
                                          default 1; 1 otherwise)
       python3 tcp_probe.py udp-listen PORT
                                         (prints "listening", then "got FROM:PORT" for each
                                          datagram until killed)
       python3 tcp_probe.py udp-send ADDRESS PORT SOURCE_PORT
       python3 tcp_probe.py frame IFACE DST_MAC SRC_IP SRC_PORT DST_IP DST_PORT [vlan]
                                         (one Ethernet frame carrying a UDP datagram, with
                                          any source address; vlan: 802.1Q-tagged, VLAN 0)"""

import socket
import struct
import sys

from icmp_ping import checksum  # beside it: run as a script, its folder is on the path


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


def udp_listen(port):
    """Print the sender of every datagram on port."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", port))
    print("listening", flush=True)
    while True:
        _, (address, source_port) = server.recvfrom(2048)
        print(f"got {address}:{source_port}", flush=True)


def udp_send(address, port, source_port):
    """One datagram to address:port from source_port."""
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("0.0.0.0", source_port))
    sender.sendto(b"x", (address, port))


def frame(iface, dst_mac, src_ip, src_port, dst_ip, dst_port, vlan=False):
    """Send one Ethernet frame with a UDP datagram from any source address."""
    payload = b"x"
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    fields = [0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0]
    addresses = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip)
    header = struct.pack("!BBHHHBBH", *fields) + addresses
    fields[7] = checksum(header)
    ip = struct.pack("!BBHHHBBH", *fields) + addresses
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    own = sock.getsockname()[4]
    tag = struct.pack("!HH", 0x8100, 0) if vlan else b""
    ethernet = bytes.fromhex(dst_mac.replace(":", "")) + own + tag + struct.pack("!H", 0x0800)
    sock.send(ethernet + ip + udp)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "listen":
        listen(int(args[0]))
    elif command == "connect":
        sys.exit(connect(args[0], int(args[1]), float(args[2]) if len(args) > 2 else 1.0))
    elif command == "udp-listen":
        udp_listen(int(args[0]))
    elif command == "udp-send":
        udp_send(args[0], int(args[1]), int(args[2]))
    else:
        iface, dst_mac, src_ip, src_port, dst_ip, dst_port = args[:6]
        frame(iface, dst_mac, src_ip, int(src_port), dst_ip, int(dst_port), args[6:] == ["vlan"])
