"""Settings: defaults, `NUBE_<KEY>` environment overrides, and validation at start-up."""

import os
import re
import secrets
from pathlib import Path

from .addresses import check_address
from .errors import InvalidInput

# libssh2, not plain ssh: it takes our own known_hosts file and checks host keys against it
# (libssh, the other one, hangs here on large replies such as getCapabilities).
DEFAULT_LIBVIRT_URI = (
    "qemu+libssh2://{user}@{address}/system?keyfile={keyfile}&known_hosts={known_hosts}"
    "&known_hosts_verify=normal&sshauth=privkey"
)

# Every setting with its default; README.md lists the same table.
DEFAULTS = {
    "DATABASE": None,  # instance/nube.sqlite when unset
    # A PostgreSQL server beyond loopback without sslmode=verify-full: refused unless this
    # says the network between them is trusted.
    "DATABASE_ALLOW_INSECURE": False,
    "REPOSITORY": "/export/iaas",
    "HOST_MOUNT": "/mnt/iaas",
    "LIBVIRT_URI": DEFAULT_LIBVIRT_URI,
    "SECRET_KEY": None,  # generated once into instance/secret_key (or the database) when unset
    # A Fernet key every controller of one Nube is given: the keys they must share (session
    # signing, host passwords, SSH) then live in the database, encrypted with it.
    "CLUSTER_KEY": None,
    "DISK_MODE": "overlay",
    "CONTROLLER_PREPARE": True,
    "CONTROLLER_ADDRESS": "127.0.0.1",
    "EXPORT": "nfs",
    "NFS_SERVER": "kernel",
    "QUEUE": "sqlite",
    "WORKERS": 4,
    "MONITOR_INTERVAL": 30.0,
    "HOST_TIMEOUT": 10.0,  # a cheap libvirt call (liveness, state, capacity) to one host
    "CALL_TIMEOUT": 120.0,  # a heavy libvirt call (define, start, shut down, force off)
    "HOST_CONCURRENCY": 2,  # heavy libvirt calls at once on one host; more wait their turn
    "MONITOR_MISSES": 3,  # consecutive silent readings before a host is unreachable
    "STOP_TIMEOUT": 30.0,
    "DETACH_TIMEOUT": 60.0,  # seconds a running guest has to release a volume being detached
    "MIGRATION_BANDWIDTH": 0,  # MiB/s a live migration may use; 0: as fast as it goes
    "DRAIN_PARALLEL": 2,  # VMs a drain moves at once
    "VIRT_TYPE": "auto",  # domain type: kvm where the host has it, or always kvm / qemu (TCG)
    "PLACEMENT": "striping",
    "MEM_OVERCOMMIT": 1.0,
    "CPU_OVERCOMMIT": 16.0,  # vCPUs placement allows per host CPU (OpenStack's old default)
    "PROVISIONER": "ansible",
    "MAX_UPLOAD_MB": 20480,  # the largest image an upload or an import brings in
    # Networks (CIDRs, comma- or space-separated) an image import may fetch from besides
    # public addresses: loopback, link-local and private ones are refused unless named here.
    "IMAGE_IMPORT_ALLOW": "",
    "PAGE_SIZE": 50,
    "LOGIN_RATE_LIMIT": 10,  # failed logins per account and address per 5 minutes
    # Proxies (load balancers) in front of the dashboard whose X-Forwarded-For is believed:
    # 0 ignores the header, so a client cannot pick the address it is throttled and audited as.
    "TRUSTED_PROXIES": 0,
    "ARTIFACTS_KEEP": 50,
    "SESSION_COOKIE_SECURE": False,
    "CONSOLE_PORT": 6080,  # the console proxy (python -m app.console) on 127.0.0.1
    "CONSOLE_TOKEN_TTL": 60,  # seconds a console link stays valid (and it is single-use)
}

CHOICES = {
    "DISK_MODE": ("overlay", "copy"),
    "EXPORT": ("nfs", "none"),
    "NFS_SERVER": ("kernel", "ganesha"),
    "PLACEMENT": ("striping", "packing"),
    "VIRT_TYPE": ("auto", "kvm", "qemu"),
}

# A provisioner class outside Nube, as `package.module:Class`.
PROVISIONER_CLASS = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A setting has a value Nube cannot use; raised at start-up."""


def bool_word(value):
    """True or False for a bool or one of the boolean words; None for anything else."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def parse_bool(key, value):
    """Turn a boolean setting into a bool, refusing anything ambiguous."""
    parsed = bool_word(value)
    if parsed is None:
        raise ConfigError(f"{key} must be one of 1/true/yes/on or 0/false/no/off, not {value!r}")
    return parsed


def _coerce(key, value):
    """Convert one setting to the type of its default and check it."""
    default = DEFAULTS[key]
    if key == "PROVISIONER" and not isinstance(value, str):
        return value  # a ready provisioner object, passed in by tests or embedding code
    if isinstance(default, bool):
        return parse_bool(key, value)
    if isinstance(default, int | float):
        return _number(key, value, type(default))
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{key} must be one of {', '.join(CHOICES[key])}, not {value!r}")
    check = TEXT_CHECKS.get(key)
    return check(value) if check else value


def _number(key, value, kind):
    """A numeric setting: an int or a float as its default is, never negative."""
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, not {value!r}") from None
    if value < 0:
        raise ConfigError(f"{key} must not be negative")
    return value


def _queue(value):
    """The QUEUE setting: sqlite, immediate or a Redis URL."""
    if value in ("sqlite", "immediate") or str(value).startswith(("redis://", "rediss://")):
        return value
    shown = "a URL of another kind" if "://" in str(value) else repr(value)  # may hold a password
    raise ConfigError(f"QUEUE must be sqlite, immediate or a redis:// URL, not {shown}")


def _provisioner(value):
    """PROVISIONER: ansible, recording (the unit tests' fake) or a class as `module:Class`."""
    if value in ("ansible", "recording") or PROVISIONER_CLASS.fullmatch(str(value)):
        return value
    raise ConfigError(
        f"PROVISIONER must be ansible, recording or a class as module:Class, not {value!r}"
    )


def _controller_address(value):
    """CONTROLLER_ADDRESS reaches the hosts' fstab and mount command lines: allow-listed."""
    try:
        return check_address(value)
    except InvalidInput as exc:
        raise ConfigError(f"CONTROLLER_ADDRESS: {exc}") from None


def _cluster_key(value):
    """CLUSTER_KEY: a Fernet key (32 bytes, url-safe base64), as Fernet.generate_key() makes."""
    from cryptography.fernet import Fernet

    try:
        Fernet(value)
    except (ValueError, TypeError):
        raise ConfigError(
            "CLUSTER_KEY must be a Fernet key (44 characters of url-safe base64), e.g. from"
            ' python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key()'
            '.decode())"'
        ) from None
    return value


def _networks(value):
    """IMAGE_IMPORT_ALLOW: CIDRs (a list, or text separated by commas or spaces) as a tuple
    of ipaddress networks; a host address is its /32 or /128."""
    import ipaddress

    words = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    try:
        return tuple(ipaddress.ip_network(str(word).strip()) for word in words)
    except ValueError as exc:
        raise ConfigError(
            f"IMAGE_IMPORT_ALLOW must list networks like 127.0.0.0/8 or fd00::/8: {exc}"
        ) from None


# Settings with a check of their own beyond their type.
TEXT_CHECKS = {
    "IMAGE_IMPORT_ALLOW": _networks,
    "QUEUE": _queue,
    "PROVISIONER": _provisioner,
    "CONTROLLER_ADDRESS": _controller_address,
    "CLUSTER_KEY": _cluster_key,
}


def load_settings(instance_path, overrides=None, environ=None):
    """Build the settings dict from defaults, the environment and explicit overrides."""
    environ = os.environ if environ is None else environ
    settings = {}
    for key in DEFAULTS:
        value = DEFAULTS[key]
        if f"NUBE_{key}" in environ:
            value = environ[f"NUBE_{key}"]
        if overrides and key in overrides:
            value = overrides[key]
        settings[key] = value if value is None else _coerce(key, value)
    instance = Path(instance_path)
    if not settings["DATABASE"]:
        settings["DATABASE"] = str(instance / "nube.sqlite")
    _check_database_tls(settings, environ)
    if not settings["SECRET_KEY"] and not settings["CLUSTER_KEY"]:
        settings["SECRET_KEY"] = _instance_secret(
            instance / "secret_key"
        )  # else: services/shared_keys.py
    if overrides:
        # Test and embedding callers may pass Flask's own keys too.
        settings.update({k: v for k, v in overrides.items() if k not in DEFAULTS})
    return settings


def _check_database_tls(settings, environ):
    """Refuse a PostgreSQL server reached over the network without verified TLS: whoever sits
    on the path could otherwise read the hosts' encrypted passwords and rewrite any row."""
    database = settings["DATABASE"]
    if settings["DATABASE_ALLOW_INSECURE"] or not str(database).startswith(
        ("postgresql://", "postgres://")
    ):
        return
    from . import pg  # psycopg only where PostgreSQL is used

    try:
        remote, sslmode = pg.network_hosts(database, environ)
    except ValueError as exc:  # the URL is never echoed: it may hold a password
        raise ConfigError(str(exc)) from None
    if remote and sslmode != "verify-full":
        raise ConfigError(
            f"DATABASE reaches the PostgreSQL server at {', '.join(remote)} over the network"
            f" with sslmode={sslmode or 'prefer'}: add sslmode=verify-full (and sslrootcert=,"
            " the server's CA) to the URL, or set DATABASE_ALLOW_INSECURE=true if the network"
            " between them is trusted"
        )


def _instance_secret(path):
    """Read the secret key file, creating it (mode 0600) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race; use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key
