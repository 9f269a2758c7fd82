"""One interface, several real channels: ``channel.send(Outgoing) -> provider id``.

A :class:`SendError` says whether trying again can help (``permanent``): a refused mailbox or
an invalid number is permanent (the message is *bounced*), a busy server or a modem that does
not answer is not (the dispatcher retries with backoff).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from typing import Protocol

import serial

from kiosk.engine.messaging import click_to_chat  # noqa: F401  (the wa.me link: one copy, in the engine)


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Outgoing:
    recipient: str
    text: str
    subject: str | None = None
    html: str | None = None
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)  # name, data, mime
    headers: dict[str, str] = field(default_factory=dict)


class Channel(Protocol):
    name: str

    def send(self, message: Outgoing) -> str: ...


# -- e-mail -----------------------------------------------------------------------------------
@dataclass
class EmailChannel:
    host: str
    port: int
    sender: str
    security: str = "starttls"  # starttls, ssl or none (none only on loopback)
    username: str | None = None
    password: str | None = None
    timeout: float = 20.0
    ssl_context: ssl.SSLContext | None = None
    ca_file: str | None = None  # a private CA (e.g. the hub's own mail relay)
    name: str = "email"
    _smtp: smtplib.SMTP | None = field(default=None, init=False, repr=False)

    def build(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or ""
        mail["Message-ID"] = make_msgid(domain=parseaddr(self.sender)[1].rpartition("@")[2] or None)
        for key, value in message.headers.items():
            mail[key] = value
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        for filename, data, mime in message.attachments:
            maintype, _, subtype = mime.partition("/")
            mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        return mail

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context(cafile=self.ca_file)
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            try:
                smtp.starttls(context=context)
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _session(self) -> smtplib.SMTP:
        # one connection for a whole run of messages (a campaign), opened on first use
        if self._smtp is None:
            smtp = self._connect()
            try:
                if self.username:
                    smtp.login(self.username, self.password or "")
            except BaseException:
                smtp.close()
                raise
            self._smtp = smtp
        return self._smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._smtp = None

    def send(self, message: Outgoing) -> str:
        mail = self.build(message)
        try:
            try:
                self._session().send_message(mail)
            except smtplib.SMTPServerDisconnected:
                self._smtp = None  # the server closed an idle session: once more, fresh
                self._session().send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"recipient refused: {exc.recipients}", permanent=True) from exc
        except smtplib.SMTPAuthenticationError as exc:
            self._smtp = None
            raise SendError(f"login refused: {exc.smtp_error!r}") from exc
        except smtplib.SMTPResponseException as exc:
            raise SendError(f"{exc.smtp_code} {exc.smtp_error!r}",
                            permanent=500 <= exc.smtp_code < 600) from exc  # fmt: skip
        except (OSError, smtplib.SMTPException) as exc:
            self._smtp = None
            raise SendError(f"mail server unreachable: {exc}") from exc
        return mail["Message-ID"]


# -- SMS over a GSM modem (AT commands, text mode) ------------------------------------------------
@dataclass
class GsmModemChannel:
    url: str  # a serial port or any pyserial URL
    baudrate: int = 115200
    timeout: float = 10.0
    name: str = "sms"

    def _command(self, port: serial.Serial, line: bytes, expect: tuple[bytes, ...]) -> bytes:
        port.write(line)
        port.flush()
        buf = b""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            buf += port.read(port.in_waiting or 1)
            if b"ERROR" in buf:
                raise SendError(f"modem refused {line!r}: {buf.decode(errors='replace').strip()}",
                                permanent=b"+CMS ERROR: 21" in buf)  # fmt: skip
            if any(e in buf for e in expect):
                return buf
        raise SendError(f"modem did not answer {line!r}")

    def send(self, message: Outgoing) -> str:
        number = message.recipient
        if not number.lstrip("+").isdigit():
            raise SendError(f"not a phone number: {number!r}", permanent=True)
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.1)
        except (serial.SerialException, OSError) as exc:
            raise SendError(f"modem not connected: {exc}") from exc
        with port:
            self._command(port, b"AT\r", (b"OK",))
            self._command(port, b"AT+CMGF=1\r", (b"OK",))
            self._command(port, b'AT+CSCS="UTF-8"\r', (b"OK",))
            self._command(port, f'AT+CMGS="{number}"\r'.encode(), (b">",))
            answer = self._command(port, message.text.encode() + b"\x1a", (b"\r\nOK",))
        ref = answer.split(b"+CMGS:")[-1].split(b"\r")[0].strip().decode(errors="replace")
        return f"cmgs:{ref}"


# -- SMS over an HTTP gateway -------------------------------------------------------------------
def _post_json(url: str, body: dict, token: str | None, timeout: float) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - owner-configured URL
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise SendError(f"HTTP {exc.code}: {detail}", permanent=400 <= exc.code < 500
                        and exc.code not in (408, 429)) from exc  # fmt: skip
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SendError(f"gateway unreachable: {exc}") from exc


@dataclass
class HttpSmsChannel:
    """A generic SMS gateway: POST {"to", "from", "text"} with a bearer token."""

    url: str
    token: str | None = None
    sender: str = ""
    timeout: float = 15.0
    name: str = "sms"

    def send(self, message: Outgoing) -> str:
        answer = _post_json(self.url, {"to": message.recipient, "from": self.sender,
                                       "text": message.text}, self.token, self.timeout)  # fmt: skip
        return str(answer.get("id", ""))


@dataclass
class WhatsAppCloudChannel:
    """WhatsApp Business Cloud API: POST {base}/{phone_number_id}/messages."""

    phone_number_id: str
    token: str
    base_url: str = "https://graph.facebook.com/v21.0"
    timeout: float = 15.0
    name: str = "whatsapp"

    def send(self, message: Outgoing) -> str:
        answer = _post_json(
            f"{self.base_url.rstrip('/')}/{self.phone_number_id}/messages",
            {"messaging_product": "whatsapp", "to": message.recipient.lstrip("+"),
             "type": "text", "text": {"body": message.text}},
            self.token, self.timeout,
        )  # fmt: skip
        return str((answer.get("messages") or [{}])[0].get("id", ""))


def qr_png(data: str) -> bytes:
    import io

    import qrcode

    buf = io.BytesIO()
    qrcode.make(data, box_size=6, border=2).save(buf)
    return buf.getvalue()
