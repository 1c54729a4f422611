"""Delivery over TLS with authentication, against a real aiosmtpd server using a certificate
made for the test: STARTTLS on the submission port, implicit TLS, and the failures that must
keep a message queued (an untrusted certificate, a wrong password)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notify.smtp import DeliveryError, SMTPMailer
from tests.fixtures.live import free_port

USER, PASSWORD = "relay-user", "relay-password"


@dataclass
class Inbox:
    messages: list[bytes] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test relay")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("relay-tls")
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _authenticator(inbox: Inbox) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == USER
            and data.password.decode() == PASSWORD
        )
        if ok:
            inbox.logins.append(data.login.decode())
        return AuthResult(success=ok)

    return check


@pytest.fixture(params=["starttls", "implicit"])
def relay(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> Iterator[tuple[str, int, Inbox]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    inbox = Inbox()
    port = free_port()
    options: dict[str, Any] = {
        "authenticator": _authenticator(inbox),
        "auth_require_tls": True,
    }
    if request.param == "starttls":
        options.update(tls_context=context, require_starttls=True)
    else:
        # aiosmtpd only counts STARTTLS as TLS for `auth_require_tls`; this whole connection
        # is TLS from its first byte.
        options.update(ssl_context=context, auth_require_tls=False)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield request.param, port, inbox
    finally:
        controller.stop()


def message() -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "ClientVault <no-reply@firm.example>"
    mail["To"] = "alice@example.test"
    mail["Subject"] = "ClientVault: 1 document change"
    mail.set_content("One change.")
    return mail


def mailer(mode: str, port: int, **overrides: Any) -> SMTPMailer:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "username": USER,
        "password": PASSWORD,
        "starttls": mode == "starttls",
        "implicit_tls": mode == "implicit",
        "timeout": 10,
    }
    options.update(overrides)
    return SMTPMailer(**options)


async def test_delivers_over_tls_with_authentication(
    relay: tuple[str, int, Inbox], certificate: tuple[Path, Path]
) -> None:
    mode, port, inbox = relay
    await mailer(mode, port, ca_file=str(certificate[0])).send(message())
    assert inbox.logins == [USER]
    assert len(inbox.messages) == 1 and b"One change." in inbox.messages[0]


async def test_an_untrusted_certificate_keeps_the_message_queued(
    relay: tuple[str, int, Inbox],
) -> None:
    mode, port, inbox = relay
    with pytest.raises(DeliveryError) as failure:
        await mailer(mode, port).send(message())  # the system CAs do not know this relay
    assert failure.value.permanent is False
    assert inbox.messages == [] and inbox.logins == []


# The relay answers a refused login only after its own delay (about 10 s): left out of the
# fast lane, run in the full suite.
@pytest.mark.slow
async def test_a_wrong_password_keeps_the_message_queued(
    relay: tuple[str, int, Inbox], certificate: tuple[Path, Path]
) -> None:
    mode, port, inbox = relay
    with pytest.raises(DeliveryError) as failure:
        await mailer(mode, port, password="wrong", ca_file=str(certificate[0])).send(message())
    assert failure.value.permanent is False
    assert inbox.messages == []
