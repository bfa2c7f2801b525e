"""The guest agent's freeze around a live snapshot never leaves a guest frozen: an attempt
libvirt gave up on (the agent answered late: the guest froze after all) is thawed before the
next, and a guest that ends frozen without an answer is thawed too. A stand-in for a libvirt
domain plays the agent (libvirt's test driver has none)."""

import libvirt
import pytest

from app.adapters import guest_agent

CHANNEL = (
    "<domain><devices><channel><target type='virtio' name='org.qemu.guest_agent.0'{state}/>"
    "</channel></devices></domain>"
)


def _error(code, message):
    error = libvirt.libvirtError(message)
    error.err = (code, 0, message, 0, None, None, None, 0, 0)
    return error


class LateAgent:
    """A guest whose agent freezes after libvirt gave up waiting, and refuses a second freeze
    while frozen (as qemu-ga does)."""

    def __init__(self, answers_late=1):
        self.frozen, self.late, self.calls = False, answers_late, []

    def agentSetResponseTimeout(self, timeout, flags):
        pass

    def XMLDesc(self, flags):
        return CHANNEL.format(state="")  # a migrated domain's channel says nothing

    def fsFreeze(self, mountpoints, flags):
        self.calls.append("freeze")
        if self.frozen:
            raise _error(libvirt.VIR_ERR_INTERNAL_ERROR, "guest-fsfreeze-freeze: already frozen")
        self.frozen = True
        if self.late:
            self.late -= 1
            raise _error(libvirt.VIR_ERR_AGENT_UNRESPONSIVE, "Guest agent is not responding")
        return 1

    def fsThaw(self, mountpoints, flags):
        self.calls.append("thaw")
        self.frozen = False
        return 1


def test_a_freeze_libvirt_gave_up_on_is_thawed_before_the_next(monkeypatch):
    monkeypatch.setattr(guest_agent, "FREEZE_RETRY_SECONDS", 0)
    dom = LateAgent(answers_late=1)
    assert guest_agent.freeze(dom) == (True, "")
    assert dom.calls == ["freeze", "thaw", "freeze"] and dom.frozen
    guest_agent.thaw(dom)
    assert not dom.frozen


def test_a_guest_that_never_answers_in_time_is_left_thawed(monkeypatch):
    monkeypatch.setattr(guest_agent, "FREEZE_RETRY_SECONDS", 0)
    dom = LateAgent(answers_late=guest_agent.FREEZE_ATTEMPTS)
    frozen, why = guest_agent.freeze(dom)
    assert not frozen and "not responding" in why
    assert not dom.frozen  # the caller's snapshot is crash-consistent, the guest runs on


def test_an_agent_that_refuses_is_thawed_and_its_error_raised(monkeypatch):
    dom = LateAgent(answers_late=0)
    dom.frozen = True  # frozen by someone else: qemu-ga refuses, the error is not "no agent"
    with pytest.raises(libvirt.libvirtError, match="already frozen"):
        guest_agent.freeze(dom)
    assert not dom.frozen
