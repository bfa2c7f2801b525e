"""Several controllers, one Nube: the keys every controller must share live in the database,
encrypted with CLUSTER_KEY (given to each controller, never stored there), and each
controller puts them where its parts read them. Without CLUSTER_KEY, nothing here runs and
each key stays in the instance folder.

Shared: the session signing key (a login works on every controller behind the balancer), the
Fernet key of the hosts' passwords (any worker runs any playbook), the SSH key pair (hosts
authorise one controller key), and the recorded host keys (known_hosts, rebuilt from the
hosts table, so no controller trusts a host on first contact that another already recorded;
only from rows carrying a controller's MAC, so a database writer cannot plant a key).
"""

import json
import logging
import os
import re
import secrets
import subprocess
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ..adapters.known_hosts import key_text
from ..addresses import check_address
from ..config import ConfigError
from ..db import connect, ensure_schema
from ..errors import InvalidInput
from ..extensions import adapters
from ..repositories import controller_secrets as secrets_repo
from ..repositories import hosts as hosts_repo
from . import host_secrets

log = logging.getLogger(__name__)


def init_app(app):
    """With CLUSTER_KEY: take the shared keys from the database (the first controller stores
    its own, or new ones) and install them; without it, do nothing."""
    database = app.config["DATABASE"]
    ensure_schema(database)
    conn = connect(database)
    try:
        if not app.config.get("CLUSTER_KEY"):
            if secrets_repo.names(conn):  # else: keys of its own, unreadable by the others
                raise ConfigError(
                    "this database is shared by several controllers: give this one their"
                    " CLUSTER_KEY too"
                )
            return
        nube = adapters(app)
        box = Fernet(app.config["CLUSTER_KEY"])
        shared = {
            name: _shared(conn, box, name, make) for name, make in _makers(conn, nube).items()
        }
        nube.secrets.use_key(shared["fernet_key"].encode())
        vouch_for_own_keys(app, conn)
        sync_known_hosts(app, conn)
    finally:
        conn.close()
    if not app.config.get("SECRET_KEY"):  # an explicit NUBE_SECRET_KEY still wins
        app.config["SECRET_KEY"] = shared["secret_key"]
    pair = json.loads(shared["ssh_key_pair"])
    _install(nube.ssh_key, pair["private"])
    _install(nube.ssh_key.with_suffix(".pub"), pair["public"])


def _makers(conn, nube):
    """How the first controller makes each shared value: its own existing key, or a new one."""
    instance = nube.instance
    return {
        "secret_key": lambda: _read(instance / "secret_key") or secrets.token_hex(32),
        "fernet_key": lambda: _read(instance / "fernet.key") or _new_fernet_key(conn),
        "ssh_key_pair": lambda: json.dumps(_key_pair(nube.ssh_key)),
    }


def _new_fernet_key(conn):
    """A new key for hosts' passwords, unless passwords are stored already: those were
    encrypted with the key of the controller that was alone so far, which must start first."""
    if hosts_repo.has_secrets(conn):
        raise ConfigError(
            "hosts' passwords are stored with a key this controller does not have: start the"
            " controller that has instance/fernet.key with CLUSTER_KEY first"
        )
    return Fernet.generate_key().decode()


def _shared(conn, box, name, make):
    """One shared value: the stored one, or this controller's, stored when none was."""
    stored = secrets_repo.get(conn, name)
    if stored is None:
        secrets_repo.add_if_absent(conn, name, box.encrypt(make().encode()).decode())
        stored = secrets_repo.get(conn, name)  # another controller may have won the race
    try:
        return box.decrypt(stored.encode()).decode()
    except InvalidToken:
        raise ConfigError(
            f"CLUSTER_KEY cannot decrypt the shared {name}: this controller was given another"
            " key than the controller that stored it"
        ) from None


def _read(path):
    """A key file's text, or None when there is none."""
    try:
        return Path(path).read_text().strip() or None
    except FileNotFoundError:
        return None


def _key_pair(ssh_key):
    """This controller's SSH key pair as text, or a new one."""
    private, public = _read(ssh_key), _read(ssh_key.with_suffix(".pub"))
    if private and public:
        return {"private": private + "\n", "public": public + "\n"}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nube-controller", "-f", path],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return {"private": path.read_text(), "public": path.with_suffix(".pub").read_text()}


def _install(path, text):
    """Write a key file (0600, atomically) unless it already holds exactly this text; a
    different key already there (this controller's own, before it joined) is kept aside."""
    current = _read(path)
    if current == text.strip():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if current is not None:
        aside = path.with_name(f"{path.name}.before-cluster")
        os.replace(path, aside)
        log.warning("kept this controller's own %s as %s", path.name, aside)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:  # mkstemp's file is 0600 from the start
        handle.write(text)
    os.replace(temp, path)


def _verified_keys(app, conn):
    """{address: recorded keys} of every host; None (nothing recorded yet) for a row whose
    keys lack a controller's MAC: written by someone else, they are named and ignored."""
    box = adapters(app).secrets
    recorded = {}
    for host_id, address, keys, mac in hosts_repo.recorded_keys(conn):
        if keys and not host_secrets.key_verifies(box, host_id, address, keys, mac):
            log.warning(
                "host %s (%s): its recorded SSH key carries no valid MAC of this Nube, so it is"
                " not trusted (the hosts table was written outside Nube?); accept the host's"
                " key again on its page",
                host_id,
                address,
            )
            keys = None
        recorded[address] = keys
    return recorded


def vouch_for_own_keys(app, conn):
    """Add the MAC to rows recorded before keys carried one (an upgrade), but only where
    this controller's own known_hosts already has exactly those keys for that address: it
    vouches for nothing it did not trust already."""
    nube = adapters(app)
    for host_id, address, keys, mac in hosts_repo.recorded_keys(conn):
        if not keys or host_secrets.key_verifies(nube.secrets, host_id, address, keys, mac):
            continue
        if not _is_address(address):
            continue
        own = set(_key_list(key_text(nube.known_hosts_file.recorded(address))))
        if own and own == set(_key_list(keys)):
            host_secrets.record_host_key(conn, nube.secrets, host_id, address, keys)
            log.info(
                "host %s (%s): its recorded SSH key now carries this Nube's MAC", host_id, address
            )


def _key_list(keys):
    """The well-formed 'type base64' keys of a row's key text."""
    return [key.strip() for key in (keys or "").split(";") if KEY_RE.fullmatch(key.strip())]


# One recorded key: its type and base64, nothing else (no marker, option or second line).
KEY_RE = re.compile(r"(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,2}")


def _is_address(address):
    """Whether a hosts row's address is one a host may have (the same check as on input)."""
    try:
        return check_address(address) == address
    except InvalidInput:
        return False


def sync_known_hosts(app, conn):
    """In a cluster, make known_hosts say what the hosts table records, whichever controller
    recorded it: a host's recorded keys replace the file's, a host being added (no key in the
    table yet) keeps the file's lines, and an address no host has any more is dropped. Alone,
    the file is the record and stays as it is."""
    if not app.config.get("CLUSTER_KEY"):
        return
    recorded = _verified_keys(app, conn)

    def merge(current):
        """The table's keys per host; the file's lines for a host whose key is not there yet."""
        merged = {}
        for address, keys in recorded.items():
            if not _is_address(address):
                continue  # never a pattern, a marker or anything but one host's address
            if keys:
                merged[address] = "".join(f"{address} {key}\n" for key in _key_list(keys))
            elif address in current:
                merged[address] = current[address]
        return merged

    adapters(app).known_hosts_file.rewrite(merge)
