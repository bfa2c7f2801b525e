"""SQL for virtual networks, the NICs (and addresses) VMs have on them, and what each host has
been given."""

from ..db import now
from ..filter_language import Column
from .vms import filtered_where

_SELECT = """
SELECT n.id, n.name, n.type, n.vni, n.bridge, n.cidr, n.gateway, n.dns, n.pool_first,
       n.pool_last, n.mtu, n.rules, n.project_id, p.name AS project, n.created_by, n.created_at,
       (SELECT COUNT(*) FROM vm_nics c WHERE c.network_id = n.id) AS used
FROM networks n LEFT JOIN projects p ON p.id = n.project_id
"""

FILTER_COLUMNS = {
    "name": Column("n.name"),
    "type": Column("n.type"),
    "vni": Column("n.vni", "int"),
    "bridge": Column("n.bridge"),
    "cidr": Column("n.cidr"),
    "gateway": Column("n.gateway"),
    "project": Column("p.name"),
}
SEARCH_COLUMNS = ("name", "cidr", "type")
VNI_FIRST = 100  # below it: VNIs an operator may keep for networks Nube does not manage

_NIC_SELECT = """
SELECT c.id, c.vm_id AS vm, c.idx, c.network_id, n.name AS network, n.type, n.vni, n.bridge,
       n.cidr, n.gateway, n.dns, n.mtu, c.ip, c.mac
FROM vm_nics c JOIN networks n ON n.id = c.network_id
"""


def search(conn, query="", project_ids=None):
    """Networks matching a filter expression (within project_ids, when given), by name."""
    where, params = filtered_where(
        query, FILTER_COLUMNS, SEARCH_COLUMNS, "n.project_id", project_ids
    )
    return conn.execute(f"{_SELECT}{where} ORDER BY n.name", params).fetchall()


def get(conn, name):
    """A network by name, or None."""
    return conn.execute(f"{_SELECT} WHERE n.name = ?", (name,)).fetchone()


def get_by_id(conn, network_id):
    """A network by id, or None."""
    return conn.execute(f"{_SELECT} WHERE n.id = ?", (network_id,)).fetchone()


def next_vni(conn):
    """The lowest VNI from VNI_FIRST no network ever had (call inside the write transaction)."""
    taken = {r[0] for r in conn.execute("SELECT vni FROM network_vnis")}
    vni = VNI_FIRST
    while vni in taken:
        vni += 1
    return vni


def insert(conn, network, project_id, created_by):
    """Add a network row (network: the checked fields); returns its id."""
    conn.execute(
        "INSERT INTO networks (name, type, vni, bridge, cidr, gateway, dns, pool_first,"
        " pool_last, mtu, rules, project_id, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            network["name"],
            network["type"],
            network.get("vni"),
            network.get("bridge"),
            network["cidr"],
            network.get("gateway"),
            ",".join(network.get("dns") or []),
            network["pool_first"],
            network["pool_last"],
            network.get("mtu"),
            network["rules"],
            project_id,
            created_by,
            now(),
        ),
    )
    if network.get("vni") is not None:
        conn.execute("INSERT INTO network_vnis (vni) VALUES (?)", (network["vni"],))
    return get(conn, network["name"])["id"]


def project_of(conn, network_id):
    """The id of the project a network belongs to, or None."""
    row = conn.execute("SELECT project_id FROM networks WHERE id = ?", (network_id,)).fetchone()
    return row[0] if row else None


def set_rules(conn, network_id, rules):
    """Replace a network's rules (JSON text)."""
    conn.execute("UPDATE networks SET rules = ? WHERE id = ?", (rules, network_id))


def hosts_of(conn, network_id):
    """Ids of the hosts Nube has given a network."""
    rows = conn.execute(
        "SELECT host_id FROM host_networks WHERE network_id = ? ORDER BY 1", (network_id,)
    )
    return [r[0] for r in rows]


def delete(conn, network_id):
    """Remove a network row (its NICs must be gone) and every host's record of it."""
    conn.execute("DELETE FROM host_networks WHERE network_id = ?", (network_id,))
    conn.execute("DELETE FROM networks WHERE id = ?", (network_id,))


def taken_numbers(conn, network_id):
    """The addresses (integers) NICs hold on a network."""
    rows = conn.execute("SELECT ip_number FROM vm_nics WHERE network_id = ?", (network_id,))
    return {r[0] for r in rows}


def mac_taken(conn, mac):
    """Whether a NIC already has this MAC."""
    return conn.execute("SELECT 1 FROM vm_nics WHERE mac = ?", (mac,)).fetchone() is not None


def insert_nic(conn, vm_id, index, network_id, ip_number, ip, mac):
    """Give a VM its NIC `index` on a network with an address and a MAC."""
    conn.execute(
        "INSERT INTO vm_nics (vm_id, idx, network_id, ip, ip_number, mac)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (vm_id, index, network_id, ip, ip_number, mac),
    )


def nics_of(conn, vm_id):
    """A VM's NICs in order, each with its network's fields."""
    return conn.execute(f"{_NIC_SELECT} WHERE c.vm_id = ? ORDER BY c.idx", (vm_id,)).fetchall()


def nics_of_vms(conn, vm_ids, chunk=500):
    """The NICs of these VMs, in order: {vm id: [nic rows]} (a list's NICs in a few queries)."""
    found = {}
    ids = list(vm_ids)
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        marks = ", ".join("?" for _ in part)
        sql = f"{_NIC_SELECT} WHERE c.vm_id IN ({marks}) ORDER BY c.vm_id, c.idx"
        for row in conn.execute(sql, part).fetchall():
            found.setdefault(row["vm"], []).append(row)
    return found


def nics_on(conn, network_id):
    """The NICs on a network (its addresses in use), by address."""
    sql = f"{_NIC_SELECT} WHERE c.network_id = ? ORDER BY c.ip_number"
    return conn.execute(sql, (network_id,)).fetchall()


def delete_nics(conn, vm_id):
    """Release a VM's addresses."""
    conn.execute("DELETE FROM vm_nics WHERE vm_id = ?", (vm_id,))


def nics_on_host(conn, host_id):
    """The NICs of the VMs placed on a host, or being moved to it (its ports: id, address and
    MAC), each with its network's fields (the networks the host must have), by NIC id."""
    sql = (
        "SELECT c.id, c.network_id, c.ip, c.mac, n.name, n.type, n.vni, n.bridge, n.mtu,"
        " n.cidr, n.rules FROM vm_nics c"
        " JOIN networks n ON n.id = c.network_id JOIN vms v ON v.id = c.vm_id"
        " WHERE v.host_id = ? OR v.moving_to = ? ORDER BY c.id"
    )
    return conn.execute(sql, (host_id, host_id)).fetchall()


def hosts_with_networks(conn):
    """Ids of the hosts Nube has given any network (their peer lists follow the others)."""
    return [r[0] for r in conn.execute("SELECT DISTINCT host_id FROM host_networks ORDER BY 1")]


def given(conn, host_id):
    """Ids of the networks Nube made on a host."""
    rows = conn.execute("SELECT network_id FROM host_networks WHERE host_id = ?", (host_id,))
    return {r[0] for r in rows}


def record_given(conn, host_id, network_ids, state):
    """Record what a host now has: these networks, applied as `state` (JSON text)."""
    conn.execute("DELETE FROM host_networks WHERE host_id = ?", (host_id,))
    for network_id in sorted(network_ids):
        conn.execute(
            "INSERT INTO host_networks (host_id, network_id) VALUES (?, ?)", (host_id, network_id)
        )
    conn.execute("UPDATE hosts SET networks_state = ? WHERE id = ?", (state, host_id))


def applied_state(conn, host_id):
    """The network state last applied on a host (JSON text), or None."""
    row = conn.execute("SELECT networks_state FROM hosts WHERE id = ?", (host_id,)).fetchone()
    return row[0] if row else None


def forget_applied(conn, host_id):
    """Make the next sync apply the host's state again (a play failed halfway: the host may
    hold what no row says any more). Empty, not NULL: NULL is a host never given a network."""
    conn.execute("UPDATE hosts SET networks_state = '' WHERE id = ?", (host_id,))
