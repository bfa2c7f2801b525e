"""Several controllers, one Nube: the keys every controller must share live in the database,
encrypted with CLUSTER_KEY (given to each controller, never stored there), and each
controller puts them where its parts read them. Without CLUSTER_KEY, nothing here runs and
each key stays in the instance folder.

Shared: the session signing key (a login works on every controller behind the balancer), the
Fernet key of the hosts' passwords (any worker runs any playbook), the SSH key pair (hosts
authorise one controller key), and the recorded host keys (known_hosts, rebuilt from the
hosts table, so no controller trusts a host on first contact that another already recorded).
"""

import json
import os
import secrets
import subprocess
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ..config import ConfigError
from ..db import connect, ensure_schema
from ..extensions import adapters
from ..repositories import controller_secrets as secrets_repo
from ..repositories import hosts as hosts_repo


def init_app(app):
    """With CLUSTER_KEY: take the shared keys from the database (the first controller stores
    its own, or new ones) and install them; without it, do nothing."""
    if not app.config.get("CLUSTER_KEY"):
        return
    nube = adapters(app)
    box = Fernet(app.config["CLUSTER_KEY"])
    database = app.config["DATABASE"]
    ensure_schema(database)
    conn = connect(database)
    try:
        shared = {name: _shared(conn, box, name, make) for name, make in _makers(nube).items()}
        sync_known_hosts(app, conn)
    finally:
        conn.close()
    if not app.config.get("SECRET_KEY"):  # an explicit NUBE_SECRET_KEY still wins
        app.config["SECRET_KEY"] = shared["secret_key"]
    nube.secrets.use_key(shared["fernet_key"].encode())
    pair = json.loads(shared["ssh_key_pair"])
    _install(nube.ssh_key, pair["private"])
    _install(nube.ssh_key.with_suffix(".pub"), pair["public"])


def _makers(nube):
    """How the first controller makes each shared value: its own existing key, or a new one."""
    instance = nube.instance
    return {
        "secret_key": lambda: _read(instance / "secret_key") or secrets.token_hex(32),
        "fernet_key": lambda: _read(instance / "fernet.key") or Fernet.generate_key().decode(),
        "ssh_key_pair": lambda: json.dumps(_key_pair(nube.ssh_key)),
    }


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
    """Write a key file (0600, atomically) unless it already holds exactly this text."""
    if _read(path) == text.strip():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:  # mkstemp's file is 0600 from the start
        handle.write(text)
    os.replace(temp, path)


def sync_known_hosts(app, conn):
    """In a cluster, make known_hosts say what the hosts table records, whichever controller
    recorded it: a host's recorded keys replace the file's, a host being added (no key in the
    table yet) keeps the file's lines, and an address no host has any more is dropped. Alone,
    the file is the record and stays as it is."""
    if not app.config.get("CLUSTER_KEY"):
        return
    recorded = dict(hosts_repo.recorded_keys(conn))

    def merge(current):
        """The table's keys per host; the file's lines for a host whose key is not there yet."""
        merged = {}
        for address, keys in recorded.items():
            if keys:
                merged[address] = "".join(
                    f"{address} {key.strip()}\n" for key in keys.split(";") if key.strip()
                )
            elif address in current:
                merged[address] = current[address]
        return merged

    adapters(app).known_hosts_file.rewrite(merge)
