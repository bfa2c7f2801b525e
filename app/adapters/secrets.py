"""Encryption at rest for host passwords (Fernet, key file outside the database)."""

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts and decrypts short secrets with a key kept in a 0600 file."""

    def __init__(self, key_path):
        self.key_path = Path(key_path)
        self._fernet = None

    def _key(self):
        """Load the key, creating it on first use."""
        if self._fernet is None:
            self.key_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                key = self.key_path.read_bytes().strip()
            else:
                key = Fernet.generate_key()
                with os.fdopen(fd, "wb") as handle:
                    handle.write(key)
            self._fernet = Fernet(key)
        return self._fernet

    def use_key(self, key):
        """Use this key (a cluster's shared one) instead of the key file."""
        self._fernet = Fernet(key)

    def encrypt(self, text):
        """Ciphertext (str) of a secret; None stays None."""
        if text is None or text == "":
            return None
        return self._key().encrypt(text.encode()).decode()

    def decrypt(self, token):
        """The secret behind a ciphertext; None stays None."""
        if not token:
            return None
        try:
            return self._key().decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("stored secret cannot be decrypted with this key") from None
