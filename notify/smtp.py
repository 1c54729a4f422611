"""Mailers: SMTP through aiosmtplib, or `.eml` files in a directory when no host is set."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib


class DeliveryError(Exception):
    """Sending failed; `permanent` failures (SMTP 5xx) are not retried."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver `message` or raise `DeliveryError`."""


@dataclass(frozen=True, slots=True)
class SMTPMailer:
    host: str
    port: int = 587
    username: str = ""
    password: str = ""
    starttls: bool = True
    implicit_tls: bool = False
    timeout: float = 30.0
    validate_certs: bool = True
    # A CA bundle for a relay whose certificate a private CA signed; empty: the system's.
    ca_file: str = ""

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username or None,
                password=self.password or None,
                use_tls=self.implicit_tls,
                start_tls=False if self.implicit_tls else self.starttls,
                timeout=self.timeout,
                validate_certs=self.validate_certs,
                cert_bundle=self.ca_file or None,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            # A configuration problem, not the message's: keep it queued.
            raise DeliveryError(f"SMTP authentication failed: {exc.code}", permanent=False) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            permanent = all(r.code >= 500 for r in exc.recipients)
            codes = ",".join(str(r.code) for r in exc.recipients)
            raise DeliveryError(f"recipient refused: {codes}", permanent=permanent) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.code}: {exc.message[:200]}", permanent=exc.code >= 500
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300], permanent=False) from exc


@dataclass(frozen=True, slots=True)
class OutboxDirMailer:
    """Writes each message as `<directory>/<uuid>.eml` (atomically: temp file, then rename)."""

    directory: Path

    async def send(self, message: EmailMessage) -> None:
        try:
            # Messages carry live invitation and reset links: owner-only (review item 10).
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            name = uuid.uuid4().hex
            temp = self.directory / f".{name}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(bytes(message))
            os.replace(temp, self.directory / f"{name}.eml")
        except OSError as exc:
            raise DeliveryError(
                f"cannot write outbox file: {exc.strerror}", permanent=False
            ) from exc


def make_mailer(
    *,
    host: str,
    port: int,
    username: str,
    password: str,
    starttls: bool,
    implicit_tls: bool,
    timeout: float,
    outbox_dir: Path,
    ca_file: str = "",
) -> Mailer:
    """SMTP when a host is configured, else the outbox directory."""
    if not host:
        return OutboxDirMailer(outbox_dir)
    return SMTPMailer(
        host=host,
        port=port,
        username=username,
        password=password,
        starttls=starttls,
        implicit_tls=implicit_tls,
        timeout=timeout,
        ca_file=ca_file,
    )
