"""Each channel against a real peer on loopback: aiosmtpd (STARTTLS + AUTH), a GSM modem
simulator on a socat pty pair, and HTTP servers speaking an SMS gateway, the WhatsApp Cloud
API and an OpenAI-compatible chat API. Plus the dispatcher end to end."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import serial

from kiosk.engine import customers, messages_outbox, messaging, settings
from storehub.messaging import ai
from storehub.messaging.channels import (
    EmailChannel, GsmModemChannel, HttpSmsChannel, Outgoing, SendError, WhatsAppCloudChannel,
    click_to_chat,
)  # fmt: skip
from storehub.messaging.dispatch import Dispatcher, load_credentials, save_credentials
from tests.support.mailserver import MailServer
from tests.support.net import LOOPBACK, free_port
from tests.test_drivers_helpers import pty_pair  # noqa: F401  (socat pty pair fixture)

PDF = b"%PDF-1.4 receipt"


def _email_channel(mail: MailServer, **kw) -> EmailChannel:
    kw = {"username": "laden", "password": "geheim", **kw}
    return EmailChannel(LOOPBACK, mail.port, "Laden <laden@example.org>", security="starttls",
                        ssl_context=mail.client_context, **kw)  # fmt: skip


def test_email_over_starttls_with_html_text_and_pdf(tmp_path):
    with MailServer(tmp_path) as mail:
        channel = _email_channel(mail)
        msg_id = channel.send(Outgoing(
            "anna@example.org", "Guten Tag Anna", "Ihr Kassenbon – Nr. 17",
            html="<p>Guten Tag <b>Anna</b></p>", attachments=[("bon-17.pdf", PDF, "application/pdf")],
            headers={"List-Unsubscribe": "<https://laden.example/u/x>"}))  # fmt: skip
        channel.close()
    (got,) = mail.messages
    assert got["Subject"] == "Ihr Kassenbon – Nr. 17" and got["To"] == "anna@example.org"
    assert got["Message-ID"] == msg_id and got["List-Unsubscribe"] == "<https://laden.example/u/x>"
    assert got.get_body(("plain",)).get_content().strip() == "Guten Tag Anna"
    assert "<b>Anna</b>" in got.get_body(("html",)).get_content()
    (att,) = list(got.iter_attachments())
    assert att.get_filename() == "bon-17.pdf" and att.get_content() == PDF


def test_email_wrong_password_and_refused_mailbox(tmp_path):
    with MailServer(tmp_path, refuse={"gone@example.org"}) as mail:
        with pytest.raises(SendError) as exc:
            _email_channel(mail, password="falsch").send(Outgoing("a@example.org", "x", "s"))
        assert not exc.value.permanent
        channel = _email_channel(mail)
        with pytest.raises(SendError) as exc:
            channel.send(Outgoing("gone@example.org", "x", "s"))
        channel.close()
        assert exc.value.permanent
    assert mail.messages == []


def test_email_server_down_is_temporary():
    channel = EmailChannel(LOOPBACK, free_port(), "a@example.org", security="none", timeout=2)
    with pytest.raises(SendError) as exc:
        channel.send(Outgoing("b@example.org", "x", "s"))
    assert not exc.value.permanent


# -- GSM modem on a pty pair -------------------------------------------------------------------
class ModemSimulator(threading.Thread):
    """Plays a GSM modem in text mode on one end of a socat pty pair."""

    def __init__(self, path: str, fail_numbers: set[str] = frozenset()) -> None:
        super().__init__(daemon=True)
        self.port = serial.Serial(path, 115200, timeout=0.05)
        self.fail = fail_numbers
        self.sent: list[tuple[str, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        buf, number, ref = b"", None, 0
        while not self.stop.is_set():
            buf += self.port.read(256)
            if number is not None and b"\x1a" in buf:
                text, _, buf = buf.partition(b"\x1a")
                ref += 1
                self.sent.append((number, text.decode()))
                self.port.write(f"\r\n+CMGS: {ref}\r\n\r\nOK\r\n".encode())
                number = None
                continue
            while b"\r" in buf and number is None:
                line, _, buf = buf.partition(b"\r")
                cmd = line.decode(errors="replace").strip()
                if cmd.startswith("AT+CMGS="):
                    target = cmd.split("=", 1)[1].strip('"')
                    if target in self.fail:
                        self.port.write(b"\r\n+CMS ERROR: 21\r\n")
                    else:
                        number = target
                        self.port.write(b"\r\n> ")
                elif cmd.startswith("AT"):
                    self.port.write(b"\r\nOK\r\n")


@pytest.mark.socat
def test_sms_through_a_gsm_modem(pty_pair):  # noqa: F811
    host_end, modem_end = pty_pair.a, pty_pair.b
    sim = ModemSimulator(modem_end, fail_numbers={"+4915000000000"})
    sim.start()
    try:
        channel = GsmModemChannel(host_end, timeout=3)
        assert channel.send(Outgoing("+491711234567", "Ihre Reparatur ist fertig. Grüße")) == "cmgs:1"
        with pytest.raises(SendError) as exc:
            channel.send(Outgoing("+4915000000000", "x"))
        assert exc.value.permanent
        with pytest.raises(SendError) as exc:
            channel.send(Outgoing("not a number", "x"))
        assert exc.value.permanent
    finally:
        sim.stop.set()
        sim.join(2)
    assert sim.sent == [("+491711234567", "Ihre Reparatur ist fertig. Grüße")]


def test_unplugged_modem_is_a_temporary_error(tmp_path):
    with pytest.raises(SendError) as exc:
        GsmModemChannel(str(tmp_path / "ttyUSB9"), timeout=1).send(Outgoing("+49171", "x"))
    assert not exc.value.permanent


# -- HTTP peers --------------------------------------------------------------------------------
class Peer:
    """A loopback HTTP server answering with a function of (path, headers, json body)."""

    def __init__(self, answer) -> None:
        self.requests: list[tuple[str, dict, dict]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                peer.requests.append((self.path, dict(self.headers), body))
                status, payload = answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_http_sms_gateway_and_whatsapp_cloud_api():
    def answer(path, body):
        if body.get("to") in ("+4900", "4900"):
            return 400, {"error": "invalid number"}
        if path.endswith("/messages"):
            return 200, {"messages": [{"id": "wamid.1"}]}
        return 200, {"id": "sms-1"}

    peer = Peer(answer)
    try:
        sms = HttpSmsChannel(peer.url + "/send", token="t0k", sender="Laden")
        assert sms.send(Outgoing("+491711234567", "Hallo")) == "sms-1"
        wa = WhatsAppCloudChannel("12345", "wa-token", base_url=peer.url + "/v21.0")
        assert wa.send(Outgoing("+491711234567", "Hallo")) == "wamid.1"
        with pytest.raises(SendError) as exc:
            sms.send(Outgoing("+4900", "x"))
        assert exc.value.permanent
    finally:
        peer.close()
    (p1, h1, b1), (p2, h2, b2), _ = peer.requests
    assert p1 == "/send" and h1["Authorization"] == "Bearer t0k"
    assert b1 == {"to": "+491711234567", "from": "Laden", "text": "Hallo"}
    assert p2 == "/v21.0/12345/messages" and h2["Authorization"] == "Bearer wa-token"
    assert b2 == {"messaging_product": "whatsapp", "to": "491711234567", "type": "text",
                  "text": {"body": "Hallo"}}  # fmt: skip
    assert click_to_chat("0171 1234567", "Grüße & mehr") == "https://wa.me/491711234567?text=Gr%C3%BC%C3%9Fe%20%26%20mehr"


def test_ai_draft_uses_the_chat_endpoint_and_falls_back_to_the_template():
    peer = Peer(lambda path, body: (200, {"choices": [{"message": {"content": "  Liebe Anna, alles Gute!  "}}]}))
    try:
        endpoint = ai.Endpoint(peer.url + "/v1", "llama3", api_key="k")
        got = ai.draft("birthday", {"first_name": "Anna", "last_name": "Muster", "email": "a@b.de"},
                       "Goldschmiede", endpoint)  # fmt: skip
    finally:
        peer.close()
    assert got == ai.Draft("Liebe Anna, alles Gute!", "ai")
    (path, headers, body), = peer.requests
    assert path == "/v1/chat/completions" and body["model"] == "llama3"
    assert "a@b.de" not in json.dumps(body)  # only what the text needs leaves the hub
    down = ai.Endpoint(f"http://{LOOPBACK}:{free_port()}/v1", "x", timeout=2)
    fallback = ai.draft("repair_ready", {"first_name": "Anna", "last_name": "Muster"}, "Uhrmacher", down)
    assert fallback.source == "template" and "Anna Muster" in fallback.text and "Uhrmacher" in fallback.text


# -- the dispatcher ----------------------------------------------------------------------------
def test_dispatcher_sends_bounces_retries_and_respects_withdrawn_consent(store, frozen_clock, tmp_path):
    store.clock = frozen_clock
    settings.set(store, "messaging.unsubscribe_url", "https://laden.example/abmelden")
    ok = customers.create(store, {"last_name": "Gut", "email": "gut@example.org", "email_consent": True})
    gone = customers.create(store, {"last_name": "Weg", "email": "gone@example.org", "email_consent": True})
    late = customers.create(store, {"last_name": "Spaet", "email": "spaet@example.org", "email_consent": True})
    for c in (ok, gone, late):
        messaging.send_to_customer(store, c["id"], "email", "promotion", "Hallo {last_name}", subject="Angebot")
    messaging.unsubscribe(store, messaging.unsubscribe_token(store, late["id"], "email"))

    save_credentials(store, "email", {"password": "geheim"})
    assert "geheim" not in store.db.execute("SELECT token FROM messaging_credentials").fetchone()[0]
    # the mail server is down first: everything waits, with backoff
    down = EmailChannel(LOOPBACK, free_port(), "laden@example.org", security="none", timeout=2)
    report = Dispatcher(store, {"email": down}).run_once()
    assert (report.sent, report.refused, report.deferred) == (0, 1, 2)
    with MailServer(tmp_path, refuse={"gone@example.org"}) as mail:
        channel = _email_channel(mail, password=load_credentials(store, "email")["password"])
        dispatcher = Dispatcher(store, {"email": channel})
        assert dispatcher.run_once().deferred == 2  # not due yet
        frozen_clock.advance(seconds=31)
        report = dispatcher.run_once()
        channel.close()
    assert (report.sent, report.bounced) == (1, 1)
    statuses = dict(store.db.execute("SELECT recipient, status FROM messages_outbox").fetchall())
    assert statuses == {"gut@example.org": "sent", "gone@example.org": "bounced",
                        "spaet@example.org": "failed"}  # fmt: skip
    (got,) = mail.messages
    assert got["List-Unsubscribe"].startswith("<https://laden.example/abmelden/")
    assert got.get_content().strip() == "Hallo Gut"
    assert messages_outbox.pending(store) == []


def test_hub_messaging_service_configured_by_cli_sends_a_birthday_mail(tmp_path, frozen_clock):
    import datetime as dt

    from kiosk.engine.store import Identity, Store
    from storehub import cli as hubcli

    db = tmp_path / "hub.db"
    store = Store(db, Identity("laden", "hub", 99))
    settings.set(store, "automation.birthday", {"active": True, "channel": "email", "hour": 0,
                                                "giftcard_cents": 0, "text": "Alles Gute, {first_name}!"})
    today = dt.datetime.now(dt.timezone.utc).astimezone(messaging._berlin()).date()
    customers.create(store, {"first_name": "Bea", "last_name": "Tag", "email": "bea@example.org",
                             "email_consent": True, "birth_date": f"{today:%d.%m}.1990"})
    store.close()
    with MailServer(tmp_path) as mail:
        (tmp_path / "pw").write_text("geheim\n")
        assert hubcli.main(["messaging", "--db", str(db), "--store", "laden", "configure", "email",
                            "--set", f"host={LOOPBACK}", "--set", f"port={mail.port}",
                            "--set", "sender=laden@example.org", "--set", "username=laden",
                            "--set", f"ca_file={tmp_path / 'cert.pem'}",
                            "--secret-file", str(tmp_path / "pw")]) == 0
        assert hubcli.main(["messaging", "--db", str(db), "--store", "laden", "configure", "email",
                            "--set", "bogus=1", "--secret-file", str(tmp_path / "pw")]) == 2
        assert hubcli.main(["messaging", "--db", str(db), "--store", "laden", "run-once"]) == 0
        assert hubcli.main(["messaging", "--db", str(db), "--store", "laden", "run-once"]) == 0
    assert [m.get_content().strip() for m in mail.messages] == ["Alles Gute, Bea!"]
    assert "geheim" not in db.read_bytes().decode("latin-1")


def test_ereceipt_modes_email_typed_at_the_till_and_pdf_attached(store, tmp_path):
    from kiosk.engine import catalog, sale

    def sell(customer_id=None):
        pid = catalog.save_product(store, "Armband", 4990)
        draft = sale.open_draft(store)
        sale.add_product(store, draft, pid)
        if customer_id:
            sale.attach_customer(store, draft, customer_id)
        sale.add_payment(store, draft, "card", 4990)
        return sale.complete(store, draft).id

    anna = customers.create(store, {"first_name": "Anna", "last_name": "Bon"})
    settings.set(store, "ereceipt.mode", "never")
    assert messaging.ereceipt_offer(store, "sale", anna) == "never"
    first = sell(anna["id"])
    assert messaging.send_ereceipt(store, first, email="anna@example.org").reason == "disabled"
    settings.set(store, "ereceipt.mode", "always")
    assert messaging.ereceipt_offer(store, "sale", anna) == "ask"  # no address yet
    with pytest.raises(customers.ValidationError):
        messaging.send_ereceipt(store, first, email="anna(at)example")
    assert messaging.send_ereceipt(store, first, email="anna@example.org").message_id
    anna = customers.get(store, anna["id"])
    assert anna["email"] == "anna@example.org"  # typed at the till, now on the record
    assert anna["email_consent"] is False  # a receipt is no consent to advertising
    assert messaging.ereceipt_offer(store, "sale", anna) == "send"
    assert messaging.send_ereceipt(store, first).reason == "duplicate"
    anonymous = sell()
    assert messaging.send_ereceipt(store, anonymous, email="gast@example.org").message_id
    # another address typed for this receipt only: the receipt goes there, the record keeps its own
    assert messaging.send_ereceipt(store, sell(anna["id"]), email="Anna.Work@Example.org").message_id
    assert customers.get(store, anna["id"])["email"] == "anna@example.org"
    settings.set(store, "ereceipt.document_types", ["return"])
    assert messaging.send_ereceipt(store, sell(anna["id"])).reason == "document_type"

    with MailServer(tmp_path) as mail:
        channel = _email_channel(mail)
        assert Dispatcher(store, {"email": channel}).run_once().sent == 3
        channel.close()
    by_to = {m["To"]: m for m in mail.messages}
    assert set(by_to) == {"anna@example.org", "gast@example.org", "Anna.Work@example.org"}
    for got in by_to.values():
        assert got["Subject"] == "Ihr Kassenbon" and "List-Unsubscribe" not in got
        (att,) = list(got.iter_attachments())
        assert att.get_content_type() == "application/pdf" and att.get_content().startswith(b"%PDF")
    assert by_to["anna@example.org"].get_body(("plain",)).get_content().startswith("Guten Tag Anna Bon")
    assert by_to["Anna.Work@example.org"].get_body(("plain",)).get_content().startswith("Guten Tag Anna")
