"""The bounds of user input and their messages, defined once: the services enforce them, and
the dashboard's forms and the API's schemas build their validators from them, so a page, the
API and app.core refuse the same input with the same words."""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Bounds:
    """A field's smallest and largest value (a number, or a length) and what is said beyond."""

    field: str
    minimum: int
    maximum: int
    unit: str = ""  # " characters" for a length

    @property
    def too_small(self):
        """The message for a value below the minimum."""
        return f"{self.field} must be at least {self.minimum}{self.unit}"

    @property
    def too_large(self):
        """The message for a value above the maximum."""
        return f"{self.field} must be at most {self.maximum}{self.unit}"

    def message_for(self, value):
        """The message for a value out of bounds, None when it is within them."""
        if value < self.minimum:
            return self.too_small
        if value > self.maximum:
            return self.too_large
        return None


# A VM's memory (MiB) and vCPUs: what libvirt's domain XML is rendered with.
MEM = Bounds("mem", 16, 4_194_304)
VCPUS = Bounds("vcpus", 1, 256)
# A volume's size and a VM disk's, in GiB.
VOLUME_SIZE = Bounds("size", 1, 65_536)
# A volume's name: also its file name and the serial the guest sees it by
# (/dev/disk/by-id/virtio-<name>), which virtio-blk cuts at 20 bytes.
VOLUME_NAME_MAX = 20
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$")
VOLUME_NAME_MESSAGE = (
    f"volume name must be 1 to {VOLUME_NAME_MAX} letters, digits, '_', '.' or '-',"
    " starting with a letter or digit"
)
# Lines of a VM's boot log one read returns.
# A VM snapshot's name (unique per VM); the qcow2 files hold it as "nube-<name>", so a name
# of digits alone is never taken for a snapshot's numeric id by qemu-img.
SNAPSHOT_NAME_MAX = 40
SNAPSHOT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
SNAPSHOT_NAME_MESSAGE = (
    f"snapshot name must be 1 to {SNAPSHOT_NAME_MAX} letters, digits, '_', '.' or '-',"
    " starting with a letter or digit"
)
SNAPSHOTS_PER_VM = 16  # each one keeps its data in the VM's files until it is removed

BOOT_LOG_LINES = Bounds("lines", 1, 10_000)

# A password being set; the login form sends at most PASSWORD_MAX characters, so a longer one
# set elsewhere could never be used.
PASSWORD_MIN, PASSWORD_MAX = 8, 256
PASSWORD_RULE = f"{PASSWORD_MIN} to {PASSWORD_MAX} characters long"
PASSWORD_MESSAGE = f"password must be {PASSWORD_RULE}"
SENT_PASSWORD_MESSAGE = f"password must be at most {PASSWORD_MAX} characters long"

# An account's user name.
USERNAME_MAX = 64
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
USERNAME_MESSAGE = (
    f"user name must be letters, digits, '_', '.', '@' or '-' (at most {USERNAME_MAX})"
)

# A VM's id and a host's name: also libvirt domain, inventory and URL names.
NAME_MAX = 63
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"

# An API token's name.
TOKEN_NAME_MAX = 64
TOKEN_NAME_MESSAGE = f"the token's name must be at most {TOKEN_NAME_MAX} characters"

# A DNS name (a host's address, a guest's hostname) and a POSIX user name.
HOSTNAME_MAX = 253
POSIX_USER_MAX = 32
# A libvirt network name (at most 64) or bridge:NAME.
NETWORK_MAX = len("bridge:") + 64
# What a host password may be: the sudo password is sent once and kept encrypted.
HOST_PASSWORD_MAX = 256
HOST_PASSWORD_MESSAGE = f"password must be at most {HOST_PASSWORD_MAX} characters long"

# First boot: user data (bytes, as UTF-8), SSH keys.
USER_DATA_MAX = 64 * 1024
SSH_KEYS_MAX = 32
SSH_KEY_MAX = 16 * 1024  # an RSA 16384-bit key is about 2.8 KiB of base64

# Images: a file name in images/, the description an upload carries.
IMAGE_NAME_MAX = 128
IMAGE_DESCRIPTION_MAX = 500
IMAGE_DESCRIPTION_MESSAGE = f"description must be at most {IMAGE_DESCRIPTION_MAX} characters"
# What an image holds (debian-12, ubuntu-24.04), a SHA-256 as hex, an import's URL.
IMAGE_OS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}")
IMAGE_OS_MESSAGE = (
    "os must be a short name like debian-12 or ubuntu-24.04: letters, digits, '_', '.', '+',"
    " '-', at most 40"
)
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
SHA256_MESSAGE = "sha256 must be 64 hexadecimal digits"
IMAGE_URL_MAX = 2000

# A host key's fingerprint as ssh-keygen -l prints it.
FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
FINGERPRINT_MESSAGE = "fingerprint must look like SHA256:<43 characters of base64>"
