"""tus `Upload-Metadata`: what a client says about an upload, as the header carries it."""

from __future__ import annotations

import base64
import binascii

from vault.errors import VaultError

MAX_METADATA = 4096


def parse_metadata(raw: str) -> dict[str, bytes]:
    """tus `Upload-Metadata`: comma-separated `key base64value` pairs (value optional).

    Raises:
        VaultError: malformed pairs, duplicate keys or invalid base64.
    """
    if len(raw) > MAX_METADATA:
        raise VaultError(f"Upload-Metadata is longer than {MAX_METADATA} characters")
    pairs: dict[str, bytes] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        value = value.strip()
        if not key or " " in value or key in pairs:
            raise VaultError(f"Upload-Metadata has a malformed or repeated key {key!r}")
        try:
            pairs[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise VaultError(f"Upload-Metadata value of {key!r} is not base64") from None
    return pairs
