"""The app's adapters, built once per app from its configuration."""

import os
import subprocess
import threading
from pathlib import Path

from flask import current_app

from .adapters.image_builder import ImageBuilder
from .adapters.image_fetch import ImageFetcher
from .adapters.image_saver import ImageSaver
from .adapters.known_hosts import KnownHosts
from .adapters.migration import Migrator
from .adapters.provisioner import provisioner_class
from .adapters.secrets import SecretBox

_key_lock = threading.Lock()


class Adapters:
    """Holds the hypervisor, storage, provisioner, image builder and secret box of one app."""

    def __init__(self, app):
        config = app.config
        instance = Path(app.instance_path)
        self.instance = instance
        self.ssh_dir = instance / "ssh"
        self.ssh_key = self.ssh_dir / "id_ed25519"
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.secrets = SecretBox(instance / "fernet.key")
        self.known_hosts_file = KnownHosts(self.known_hosts)

        from .adapters.hypervisor import Hypervisor
        from .adapters.storage import Storage

        self.storage = Storage(config["REPOSITORY"], disk_mode=config["DISK_MODE"])
        self.hypervisor = Hypervisor(
            config["LIBVIRT_URI"],
            keyfile=str(self.ssh_key),
            timeout=config["HOST_TIMEOUT"],
            call_timeout=config["CALL_TIMEOUT"],
            concurrency=config["HOST_CONCURRENCY"],
            known_hosts=str(self.known_hosts),
        )
        self.provisioner = self._provisioner(app)
        self.image_builder = ImageBuilder()  # tests swap its command runner for a fake
        # VIRT_TYPE=qemu: KVM runs no guest kernel here, nor then virt-sysprep's appliance
        self.image_saver = ImageSaver(tcg=config["VIRT_TYPE"] == "qemu")
        self.image_fetch = ImageFetcher(allow=config["IMAGE_IMPORT_ALLOW"])
        self.migrator = Migrator(self.hypervisor)

    def public_key(self):
        """The controller's SSH public key, creating the key pair (0600) on first use."""
        with _key_lock:
            if not self.ssh_key.exists():
                self.ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                subprocess.run(
                    [
                        "ssh-keygen",
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        "nube-controller",
                        "-f",
                        str(self.ssh_key),
                    ],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
                os.chmod(self.ssh_key, 0o600)
        return self.ssh_key.with_suffix(".pub").read_text().strip()

    def _provisioner(self, app):
        """The provisioner named by PROVISIONER (a ready object may be passed in tests)."""
        choice = app.config["PROVISIONER"]
        if not isinstance(choice, str):
            return choice
        if choice != "ansible":
            return provisioner_class(choice)()
        from .adapters.ansible import AnsibleProvisioner

        return AnsibleProvisioner(
            plays_dir=Path(app.root_path).parent / "plays",
            work_dir=self.instance / "runner",
            ssh_key=self.ssh_key,
            known_hosts=self.known_hosts,
            keep=app.config["ARTIFACTS_KEEP"],
        )


def init_app(app):
    """Attach the adapters to the app."""
    app.extensions["nube"] = Adapters(app)


def adapters(app=None):
    """The adapters of the given or current app."""
    return (app or current_app).extensions["nube"]
