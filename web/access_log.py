"""Keep link secrets out of the access log (review item 16).

Invitation, password-reset and unsubscribe links carry their secret in the URL path, and
uvicorn's access log writes the path of every request. Anyone who reads the log (a log
shipper, a support engineer, a backup) could otherwise take over an invitation or a reset.
The filter rewrites the path argument of each `uvicorn.access` record before any handler
formats it; it is installed by the app's lifespan, so every way of serving gets it.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
# The routes whose next path segment is a secret: /invite/{token}, /reset/{token},
# /unsubscribe/{token}, and share links /s/{token} (public contract).
_SECRET_SEGMENT = re.compile(r"(/(?:invite|reset|unsubscribe|s)/)[^/?#\s]+")


def redact(path: str) -> str:
    """`path` with the secret segment of every link route replaced."""
    return _SECRET_SEGMENT.sub(lambda m: m.group(1) + REDACTED, path)


class SecretPathFilter(logging.Filter):
    """Rewrites the request line of uvicorn access records; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, path, version, status).
        if isinstance(args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Add the filter to uvicorn's access logger once (the app may be built many times)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, SecretPathFilter) for f in logger.filters):
        logger.addFilter(SecretPathFilter())
