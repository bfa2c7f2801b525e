"""A virtual network's addresses: its range checked, the next free address found, a NIC's MAC.

Pure functions over IPv4 values; the rows that say which addresses are taken are the
repository's. Addresses are handed out in order from the network's pool (by default every host
address of its CIDR but the gateway), so a VM's address is predictable and a freed one is
given again only once those before it are taken.
"""

import hashlib
import ipaddress

from .errors import InvalidInput

PREFIX_MIN, PREFIX_MAX = 16, 29  # a /16 is 65,534 addresses; a /30 has room for no VM
DNS_MAX = 3  # what a resolv.conf takes
NETWORK_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"
MAC_PREFIX = "52:54"  # locally administered, as QEMU's own 52:54:00


def tap_name(nic_id):
    """A NIC's tap on every host: nt and its row id (host rules find a VM's port by it)."""
    return f"nt{nic_id}"


def check_cidr(value):
    """An IPv4 network from text like 10.20.0.0/24 (host bits must be zero)."""
    if not isinstance(value, str) or "/" not in value:
        raise InvalidInput(f"cidr must be an IPv4 network such as 10.20.0.0/24, not {value!r:.60}")
    try:
        network = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as error:
        raise InvalidInput(f"cidr {value!r:.60} is not a network: {error}") from None
    if network.version != 4:
        raise InvalidInput(f"cidr {value} is IPv6: networks take IPv4 ranges only for now")
    if not PREFIX_MIN <= network.prefixlen <= PREFIX_MAX:
        raise InvalidInput(
            f"cidr {value} is a /{network.prefixlen}: the prefix must be from /{PREFIX_MIN} to"
            f" /{PREFIX_MAX}"
        )
    if not network.is_private or network.is_loopback or network.is_link_local:
        raise InvalidInput(
            f"cidr {value} is not a private range: use one inside 10.0.0.0/8, 172.16.0.0/12"
            " or 192.168.0.0/16"
        )
    return network


def check_address_in(network, value, what):
    """An IPv4 host address of `network` from text; InvalidInput naming `what` otherwise."""
    try:
        address = ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{what} must be an IPv4 address, not {value!r:.60}") from None
    if address not in network or address in (network.network_address, network.broadcast_address):
        raise InvalidInput(f"{what} {address} is not a host address of {network}")
    return address


def check_dns(value):
    """Up to DNS_MAX IPv4 resolver addresses from a list or comma-separated text."""
    if value in (None, "", []):
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise InvalidInput(f"dns must be a list of IPv4 addresses, not {value!r:.60}")
    found = []
    for item in items:
        try:
            found.append(str(ipaddress.IPv4Address(str(item).strip())))
        except ValueError:
            raise InvalidInput(f"dns: {item!r:.60} is not an IPv4 address") from None
    if len(found) > DNS_MAX:
        raise InvalidInput(f"dns takes at most {DNS_MAX} addresses, not {len(found)}")
    return found


def pool(network, gateway=None, first=None, last=None):
    """The pool Nube hands addresses out of, as (first, last) integers: the CIDR's host
    addresses (or first..last inside them)."""
    low = check_address_in(network, first, "range start") if first else network.network_address + 1
    high = check_address_in(network, last, "range end") if last else network.broadcast_address - 1
    if low > high:
        raise InvalidInput(f"the range {low}-{high} is empty: its start is after its end")
    size = int(high) - int(low) + 1 - (1 if gateway is not None and low <= gateway <= high else 0)
    if size < 1:
        raise InvalidInput(f"the range {low}-{high} leaves no address once the gateway is taken")
    return int(low), int(high)


def free_count(pool_first, pool_last, gateway, taken):
    """How many addresses of the pool are still free (taken: the count of NIC addresses)."""
    size = pool_last - pool_first + 1
    if gateway and pool_first <= int(ipaddress.IPv4Address(gateway)) <= pool_last:
        size -= 1
    return size - taken


def next_free(pool_first, pool_last, gateway, taken):
    """The lowest address of the pool that is neither the gateway nor taken (a set of integers),
    as an integer; None when the pool is full."""
    skip = set(taken)
    if gateway:
        skip.add(int(ipaddress.IPv4Address(gateway)))
    for number in range(pool_first, pool_last + 1):
        if number not in skip:
            return number
    return None


def text(number):
    """An address's dotted text from its integer."""
    return str(ipaddress.IPv4Address(number))


def number(address):
    """An address's integer from its text."""
    return int(ipaddress.IPv4Address(address))


def nic_mac(vm_uuid, index, attempt=0):
    """A NIC's MAC from its VM's UUID and its index: the same on every host and after every
    move (the guest's network-config finds its NIC by it). `attempt` > 0 gives another one for
    the rare pair two VMs would share (the table keeps MACs unique)."""
    seed = f"{vm_uuid}/{index}" + (f"/{attempt}" if attempt else "")
    digest = hashlib.sha256(seed.encode()).digest()
    return MAC_PREFIX + ":" + ":".join(f"{b:02x}" for b in digest[:4])


def bridge_for(network_type, vni, bridge):
    """The host bridge a network's NICs plug into: Nube's own `nbr<VNI>` for an overlay, or
    the hosts' existing bridge."""
    return f"nbr{vni}" if network_type == "vxlan" else bridge


def vxlan_device(vni):
    """The VXLAN device of an overlay on each host (a port of its bridge)."""
    return f"nvx{vni}"
