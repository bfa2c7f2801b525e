"""Encryption at rest for host passwords (Fernet, key file outside the database), and the
MACs that let the controller recognise rows it wrote itself."""

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

# A sealed secret's plaintext starts with this line; a bare secret (stored before secrets were
# bound to their target) does not.
SEALED = "nube-sealed-v1\n"


class SecretBox:
    """Encrypts and decrypts short secrets with a key kept in a 0600 file."""

    def __init__(self, key_path):
        self.key_path = Path(key_path)
        self._fernet = None
        self._raw = None

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
            self._fernet, self._raw = Fernet(key), key
        return self._fernet

    def use_key(self, key):
        """Use this key (a cluster's shared one) instead of the key file."""
        self._fernet = Fernet(key)
        self._raw = key

    def _raw_key(self):
        """The Fernet key itself (url-safe base64), for deriving other keys from it."""
        self._key()
        return self._raw

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

    def seal(self, secret, binding):
        """Ciphertext of a secret together with the target it may be used for (a dict of
        text, e.g. address and user): whoever can only write the database cannot change one
        without the other."""
        payload = json.dumps({"binding": binding, "secret": secret}, sort_keys=True)
        return self._key().encrypt((SEALED + payload).encode()).decode()

    def unseal(self, token):
        """(secret, binding) of a ciphertext; binding is None for a bare secret stored before
        secrets were bound to their target."""
        text = self.decrypt(token)
        if not text.startswith(SEALED):
            return text, None
        payload = json.loads(text[len(SEALED) :])
        return payload["secret"], payload["binding"]

    def mac(self, purpose, *parts):
        """An HMAC-SHA256 (hex) of parts, under a key derived from this box's key for one
        purpose: only a controller holding the key can make one that verifies."""
        key = hmac.new(base64.urlsafe_b64decode(self._raw_key()), purpose.encode(), "sha256")
        message = json.dumps([str(part) for part in parts]).encode()
        return hmac.new(key.digest(), message, hashlib.sha256).hexdigest()

    def verify(self, mac, purpose, *parts):
        """Whether mac is this box's MAC of parts for purpose."""
        return isinstance(mac, str) and hmac.compare_digest(mac, self.mac(purpose, *parts))
