"""Envelope encryption with AES-256-GCM (`cryptography`): values are encrypted with the
organisation's data key; the data key is stored wrapped by the platform's master key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32


class CryptoError(Exception):
    pass


def parse_master_key(encoded: str) -> bytes:
    """A master key is 32 random bytes, base64-encoded (`openssl rand -base64 32`)."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("The master key is not valid base64.") from exc
    if len(key) != KEY_BYTES:
        raise CryptoError(f"The master key must be {KEY_BYTES} bytes, not {len(key)}.")
    return key


def key_id(key: bytes) -> str:
    """A public fingerprint of a key, to know which master key wrapped a data key."""
    return hashlib.sha256(b"windflow-key-id" + key).hexdigest()[:16]


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """nonce || ciphertext+tag; `context` (associated data) binds it to its place."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def open_sealed(key: bytes, sealed: bytes, context: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)
    except InvalidTag as exc:
        raise CryptoError("Decryption failed: wrong key, or the data was altered.") from exc
