"""An ICMP echo from a raw socket, for machines without a ping binary.

Usage (as root, inside a network namespace): python3 icmp_ping.py ADDRESS [SECONDS]
Exit status 0 once ADDRESS answered, 1 when it did not within SECONDS (default 5)."""

import os
import socket
import struct
import sys
import time

ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data):
    """The Internet checksum of data."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident, sequence):
    """One echo request packet."""
    payload = b"nube-overlay-check"
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, sequence)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, sequence) + (
        payload
    )


def answered(sock, address, ident):
    """Whether an echo reply from address for ident arrives before the socket times out."""
    try:
        while True:
            data, (sender, _) = sock.recvfrom(2048)
            start = (data[0] & 0x0F) * 4  # after the IPv4 header
            kind, _, _, their_ident, _ = struct.unpack("!BBHHH", data[start : start + 8])
            if kind == ECHO_REPLY and their_ident == ident and sender == address:
                return True
    except TimeoutError:
        return False


def ping(address, seconds=5.0):
    """Send an echo request every half second until address answers or time runs out."""
    ident = os.getpid() & 0xFFFF
    deadline = time.monotonic() + seconds
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.settimeout(0.5)
        sequence = 0
        while time.monotonic() < deadline:
            sequence += 1
            sock.sendto(echo_request(ident, sequence), (address, 0))
            if answered(sock, address, ident):
                return True
    return False


if __name__ == "__main__":
    sys.exit(0 if ping(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 5.0) else 1)
