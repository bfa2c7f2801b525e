"""First-boot configuration: checks on a VM's hostname, SSH keys and user data, and the
documents of its cloud-init NoCloud seed."""

import base64
import binascii
import hashlib
import re
import struct

import yaml

from .errors import InvalidInput
from .limits import HOSTNAME_MAX, SSH_KEY_MAX, SSH_KEYS_MAX, USER_DATA_MAX

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
CLOUD_CONFIG = "#cloud-config"
SCRIPT = "#!"

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_COMMENT = re.compile(r"[^\x00-\x1f\x7f]{0,256}")


def default_hostname(vm_id):
    """A VM's hostname when none is asked for: its id, made a valid host name ('_' is not)."""
    return vm_id.lower().replace("_", "-").strip(".-")[:63].rstrip("-") or "vm"


def check_hostname(value):
    """A host name of dot-separated RFC 1123 labels (lower-cased), at most 253 characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"hostname must be text, not {value!r:.40}")
    name = value.strip().lower()
    labels = name.split(".")
    if not name or len(name) > HOSTNAME_MAX or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidInput(
            f"invalid hostname {value!r:.80}: use labels of letters, digits and '-' "
            "(at most 63 each, not starting or ending with '-'), joined by '.'"
        )
    if labels[-1].isdigit():
        raise InvalidInput(f"invalid hostname {value!r:.80}: it must not end in a number")
    return name


def _key_blob(key_type, data, number):
    """The decoded key, refused unless it is well-formed base64 that names its own type."""
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"SSH key {number}: the key data is not valid base64") from None
    try:
        (length,) = struct.unpack(">I", blob[:4])
        inner = blob[4 : 4 + length].decode("ascii")
    except (struct.error, UnicodeDecodeError):
        inner = None
    if inner != key_type:
        raise InvalidInput(f"SSH key {number}: the key data is not a {key_type} key")
    return blob


def check_ssh_key(line, number=1):
    """One public key as `TYPE BASE64 [COMMENT]` (authorized_keys options are not accepted);
    returns it normalised to single spaces."""
    if not isinstance(line, str):
        raise InvalidInput(f"SSH key {number} must be text")
    if len(line) > SSH_KEY_MAX:
        raise InvalidInput(f"SSH key {number} is longer than {SSH_KEY_MAX} characters")
    parts = line.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise InvalidInput(
            f"SSH key {number} is not a public key: expected 'TYPE KEY [comment]' with TYPE one "
            f"of {', '.join(SSH_KEY_TYPES)} (paste the .pub file, not the private key)"
        )
    comment = parts[2].strip() if len(parts) == 3 else ""
    if not _COMMENT.fullmatch(comment):
        raise InvalidInput(f"SSH key {number}: the comment has control characters or is too long")
    _key_blob(parts[0], parts[1], number)
    return " ".join(p for p in (parts[0], parts[1], comment) if p)


def check_ssh_keys(value):
    """A list of public keys (a list, or text with one key a line; blank lines and '#'
    comments skipped), each checked; duplicates dropped."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [line for line in value.splitlines() if line.strip() and not line.startswith("#")]
    if not isinstance(value, list | tuple):
        raise InvalidInput("ssh_keys must be a list of public keys")
    if len(value) > SSH_KEYS_MAX:
        raise InvalidInput(f"at most {SSH_KEYS_MAX} SSH keys, not {len(value)}")
    keys = []
    for number, line in enumerate(value, start=1):
        key = check_ssh_key(line, number)
        if key not in keys:
            keys.append(key)
    return keys


def fingerprint(key):
    """OpenSSH's SHA256 fingerprint of a public key line (as `ssh-keygen -l` prints it)."""
    digest = hashlib.sha256(base64.b64decode(key.split()[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def describe_key(key):
    """A key as a page lists it: {type, fingerprint, comment}."""
    parts = key.split(" ", 2)
    return {
        "type": parts[0],
        "fingerprint": fingerprint(key),
        "comment": parts[2] if len(parts) == 3 else "",
    }


def check_user_data(value):
    """User data: empty, a `#cloud-config` YAML mapping, or a `#!` script; at most 64 KiB."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("user_data must be text")
    if not value.strip():
        return ""
    if "\x00" in value:
        raise InvalidInput("user_data must not contain NUL characters")
    size = len(value.encode("utf-8"))
    if size > USER_DATA_MAX:
        raise InvalidInput(f"user_data is {size} bytes: at most {USER_DATA_MAX} (64 KiB)")
    text = value.replace("\r\n", "\n")
    first = text.lstrip().split("\n", 1)[0].strip()
    if first == CLOUD_CONFIG:
        _check_cloud_config(text)
    elif not first.startswith(SCRIPT):
        raise InvalidInput(
            f"user_data must start with '{CLOUD_CONFIG}' (a cloud-config document) "
            f"or '{SCRIPT}' (a script run once at first boot), not {first[:40]!r}"
        )
    return text.lstrip()


def _check_cloud_config(text):
    """Refuse a cloud-config document that is not a YAML mapping, naming where it breaks."""
    try:
        document = yaml.safe_load(text)
    except RecursionError:
        raise InvalidInput("user_data: the YAML document is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise InvalidInput(f"user_data is not valid YAML{where}: {problem}") from None
    if document is not None and not isinstance(document, dict):
        raise InvalidInput("user_data: a cloud-config document must be a mapping of keys")


def mac_address(uuid_text):
    """A stable locally administered MAC address in QEMU's 52:54:00 range, from a VM's UUID."""
    digest = hashlib.sha256(uuid_text.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def meta_data(instance_id, hostname, ssh_keys):
    """NoCloud meta-data: a stable instance id (cloud-init runs its first boot once per id),
    the hostname and the keys for the image's default user."""
    document = {"instance-id": instance_id, "local-hostname": hostname}
    if ssh_keys:
        document["public-keys"] = list(ssh_keys)
    return _yaml(document)


def network_config(mac):
    """NoCloud network-config (version 1): DHCP on the VM's one NIC, found by its MAC."""
    return _yaml(
        {
            "version": 1,
            "config": [
                {
                    "type": "physical",
                    "name": "eth0",
                    "mac_address": mac,
                    "subnets": [{"type": "dhcp"}],
                }
            ],
        }
    )


def static_network_config(nics):
    """NoCloud network-config (version 1) for NICs on Nube's networks: each found by its MAC,
    its address fixed (Nube's IPAM chose it); the first NIC with a gateway carries the default
    route, and the DNS servers of the networks are the guest's."""
    config, routed, servers = [], False, []
    for index, nic in enumerate(nics):
        subnet = {"type": "static", "address": f"{nic['ip']}/{nic['prefix']}"}
        if nic.get("gateway") and not routed:
            subnet["gateway"] = nic["gateway"]
            routed = True
        servers += [d for d in nic.get("dns") or () if d not in servers]
        device = {"type": "physical", "name": f"eth{index}", "mac_address": nic["mac"]}
        if nic.get("mtu"):
            device["mtu"] = nic["mtu"]
        device["subnets"] = [subnet]
        config.append(device)
    if servers:
        config.append({"type": "nameserver", "address": servers})
    return _yaml({"version": 1, "config": config})


def user_data(text):
    """The user-data file: the VM's own, or an empty cloud-config document."""
    return text if text else f"{CLOUD_CONFIG}\n{{}}\n"


def seed_files(vm_id, instance_id, hostname, ssh_keys, user_text, mac=None, nics=()):
    """The files of a VM's seed ({name: bytes}); network-config only when it has a NIC: static
    addresses on Nube's networks (nics), or DHCP on the host's network (mac)."""
    files = {
        "meta-data": meta_data(instance_id, hostname or default_hostname(vm_id), ssh_keys),
        "user-data": user_data(user_text),
    }
    if nics:
        files["network-config"] = static_network_config(nics)
    elif mac:
        files["network-config"] = network_config(mac)
    return {name: text.encode("utf-8") for name, text in files.items()}


def _yaml(document):
    return yaml.safe_dump(document, default_flow_style=False, sort_keys=False)
