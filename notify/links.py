"""Signed one-click unsubscribe links (RFC 8058): `{public_url}/unsubscribe/{token}`.

The token names a user and a client and carries an HMAC-SHA256 over both, keyed by a key
derived from a KEK of the keyring (never a KEK itself) and naming that KEK, so links in old
emails keep working after a key rotation. No expiry: the link only ever turns emails off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Protocol

from vault.errors import KeyNotFoundError

PURPOSE = b"clientvault/unsubscribe-link/v1"
_MAX_TOKEN = 256


class KeyDeriver(Protocol):
    """What the links need of the keyring (`vault.crypto.keyring.Keyring` is one)."""

    def derive(self, purpose: bytes, kek_id: str | None = None) -> tuple[str, bytes]: ...


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, kek_id: str, payload: bytes) -> bytes:
    message = PURPOSE + b"\x00" + kek_id.encode("utf-8") + b"\x00" + payload
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class UnsubscribeLinks:
    keys: KeyDeriver
    public_url: str

    def token(self, user_id: uuid.UUID, client_id: uuid.UUID) -> str:
        kek_id, key = self.keys.derive(PURPOSE)
        payload = user_id.bytes + client_id.bytes
        mac = _mac(key, kek_id, payload)
        return f"{_b64(payload)}.{_b64(kek_id.encode('utf-8'))}.{_b64(mac)}"

    def url(self, user_id: uuid.UUID, client_id: uuid.UUID) -> str:
        return f"{self.public_url.rstrip('/')}/unsubscribe/{self.token(user_id, client_id)}"

    def verify(self, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(user id, client id) if the token is genuine, else None; any malformation is None."""
        if len(token) > _MAX_TOKEN or token.count(".") != 2:
            return None
        payload_b64, kek_b64, mac_b64 = token.split(".")
        try:
            payload = _unb64(payload_b64)
            kek_id = _unb64(kek_b64).decode("utf-8")
            mac = _unb64(mac_b64)
        except (binascii.Error, ValueError):
            return None
        if len(payload) != 32 or not kek_id:
            return None
        try:
            _, key = self.keys.derive(PURPOSE, kek_id)
        except KeyNotFoundError:
            return None
        if not hmac.compare_digest(_mac(key, kek_id, payload), mac):
            return None
        return uuid.UUID(bytes=payload[:16]), uuid.UUID(bytes=payload[16:])
