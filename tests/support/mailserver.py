"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, with STARTTLS + AUTH."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.net import LOOPBACK, free_port


def self_signed(dirpath: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = dirpath / "cert.pem", dirpath / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


class _Handler:
    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"


class MailServer:
    """``with MailServer(tmp) as mail:`` — mail.port, mail.messages, mail.client_context."""

    def __init__(self, dirpath: Path, *, tls: bool = True, user: str = "laden",
                 password: str = "geheim", refuse: set[str] | None = None) -> None:  # fmt: skip
        self.handler = _Handler(refuse or set())
        self.port = free_port()
        self.user, self.password = user, password
        self.client_context = None
        kwargs = {}
        if tls:
            cert, key = self_signed(dirpath)
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(cert, key)
            self.client_context = ssl.create_default_context(cafile=str(cert))
            kwargs = dict(tls_context=server_ctx, require_starttls=True,
                          authenticator=self._auth, auth_require_tls=True)  # fmt: skip
        self.controller = Controller(self.handler, hostname=LOOPBACK, port=self.port,
                                     ready_timeout=10, **kwargs)  # fmt: skip

    def _auth(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)  # fmt: skip
        return AuthResult(success=ok, handled=False)

    @property
    def messages(self):
        return self.handler.messages

    def __enter__(self) -> "MailServer":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
