"""Encryption of sensitive fields at rest (ID-card numbers) with the store's data key.

The key is shared by the store's devices and hub (provisioned at enrolment) so the owner can
read a number for a gold purchase record; the database and the event log only hold tokens.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MASK = "•"


def _fernet(secret: bytes, purpose: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret: bytes, text: str, purpose: str = "id-card") -> str:
    return _fernet(secret, purpose.encode()).encrypt(text.encode()).decode()


def decrypt(secret: bytes, token: str, purpose: str = "id-card") -> str:
    try:
        return _fernet(secret, purpose.encode()).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt: wrong store key or damaged value") from exc


def mask(text: str, visible: int = 3) -> str:
    """Show only the last ``visible`` characters: enough to compare with the document."""
    text = text.strip()
    if len(text) <= visible:
        return MASK * len(text)
    return MASK * (len(text) - visible) + text[-visible:]
