"""The hypervisor adapter's calls for guests and hosts beyond power: a host's networks, a
domain's definition and migration job, and its guest agent. A mixin of Hypervisor: each call
goes through its _run (timeouts, one retry, mapped errors)."""

import xml.etree.ElementTree as ET

import libvirt

from app.adapters import guest_agent


class HostAndGuestCalls:
    """Calls that need Hypervisor._run."""

    def networks(self, host) -> dict[str, bool]:
        """The host's libvirt networks: {name: whether it is active}."""
        return self._run(
            host, lambda c: {n.name(): bool(n.isActive()) for n in c.listAllNetworks()}
        )

    def bridges(self, host) -> list[str] | None:
        """The host's bridge interfaces as libvirt's interface driver sees them; None when
        that driver cannot list them (it needs udev, or netcf)."""

        def work(conn):
            try:
                found = conn.listAllInterfaces()
            except libvirt.libvirtError:
                return None
            return sorted(
                i.name() for i in found if ET.fromstring(i.XMLDesc(0)).get("type") == "bridge"
            )

        return self._run(host, work)

    def definition(self, host, name, live=False) -> str:
        """A domain's persistent definition (XML), or with live the running one: what the
        host says, to compare (never to define anywhere)."""
        flags = libvirt.VIR_DOMAIN_XML_SECURE | (0 if live else libvirt.VIR_DOMAIN_XML_INACTIVE)
        return self._run(host, lambda c: c.lookupByName(name).XMLDesc(flags), name)

    def job_stats(self, host, name) -> dict:
        """The statistics of a domain's running job (a migration), or {} with none."""
        return self._run(host, lambda c: c.lookupByName(name).jobStats(), name)

    def abort_job(self, host, name) -> None:
        """Abort a domain's running job (a migration: the guest stays where it was)."""

        def work(conn):
            try:
                conn.lookupByName(name).abortJob()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:  # no job left
                    raise

        self._run(host, work, name)

    def agent_shutdown(self, host, name) -> bool:
        """Ask the guest agent to power the guest off; False when no agent answers."""
        return self._run(host, lambda c: guest_agent.agent_shutdown(c.lookupByName(name)), name)

    def guest_info(self, host, name) -> guest_agent.GuestInfo | None:
        """The guest's OS, hostname and addresses from its agent; None without one."""
        return self._run(host, lambda c: guest_agent.read_guest_info(c.lookupByName(name)), name)
