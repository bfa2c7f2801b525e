"""Allow-lists for the values that reach command lines, inventories, config files and URIs.

A host's address and user go to ssh-keyscan, known_hosts, the Ansible inventory, the NFS
export and the libvirt URI: each of those re-parses text, so only values that cannot mean
anything else there pass. Services check them at the edge; adapters check again before use,
so a row written by an older Nube cannot smuggle anything through.
"""

import ipaddress
import re

from .errors import InvalidInput
from .limits import NAME_PATTERN

HOSTNAME_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
# Only what ipaddress then checks: ipaddress alone accepts an IPv6 zone id ('fe80::1%<any
# text>'), which may carry commas, spaces or Jinja2 braces.
IPV4_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
IPV6_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}")
USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
# A host's name (also its inventory name and a URL part): letters, digits, '_', '.', '-'.
NAME_RE = re.compile(NAME_PATTERN)
# A last label the resolver reads as a number ('127.1', '0x7f.1', '0x0a000005', '017700000001'):
# inet_aton spellings of an IP address, which would give one machine several names.
NUMERIC_LABEL_RE = re.compile(r"(?i)[0-9]+|0x[0-9a-f]*")


def _usable(ip, value):
    """Refuse addresses that name no single host, or another spelling of an IPv4 address."""
    if ip.version == 6 and ip.ipv4_mapped:
        raise InvalidInput(f"address {value!r}: write the IPv4 address {ip.ipv4_mapped} itself")
    if ip.is_unspecified or ip.is_multicast or str(ip) == "255.255.255.255":
        raise InvalidInput(f"address {value!r} names no single host")
    return ip


def check_address(value):
    """A host name, an IPv4 address or an IPv6 address (no zone id), normalised: one machine
    has one spelling, so uniqueness and known_hosts (keyed by the text) hold."""
    if not isinstance(value, str):
        raise InvalidInput("address must be text")
    if IPV4_RE.fullmatch(value) or IPV6_RE.fullmatch(value):
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            pass  # digits and dots that are no address (999.1.1.1): refused below
        else:
            return str(_usable(ip, value))
    elif HOSTNAME_RE.fullmatch(value) and not NUMERIC_LABEL_RE.fullmatch(value.rsplit(".", 1)[-1]):
        return value.lower()
    raise InvalidInput(
        f"address {value[:80]!r} is not a host name or IP address (IPv4, or IPv6 without a %zone)"
    )


def check_ip(value):
    """An IPv4 or IPv6 address (no zone id), normalised; InvalidInput otherwise."""
    address = check_address(value)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise InvalidInput(f"{value[:80]!r} is not an IP address") from None
    return address


def check_user(value):
    """A POSIX user name."""
    if not isinstance(value, str) or not USER_RE.fullmatch(value):
        raise InvalidInput(f"user {str(value)[:40]!r} is not a valid user name")
    return value


def uri_host(address):
    """An address as the host part of a URI or an ssh host:port: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address
