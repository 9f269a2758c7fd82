"""E-receipt after the sale and WhatsApp click-to-chat, driven through real Kivy widgets (Xvfb).

A sale is rung up and paid on the payment screen; what follows depends on the
``ereceipt.mode`` setting: sent at once (always, e-mail known), asked (suggest, or always
without an address) or nothing (never). The WhatsApp QR code is read back from the texture
the popup shows and compared module by module with the QR code of the expected wa.me link
(no QR decoder is installed here), so a wrong link fails the test.
"""

from __future__ import annotations

import gettext
import urllib.parse

import pytest
from escpos.printer import Dummy

from kiosk.engine import catalog, customers, messaging, settings, stored_value
from kiosk.engine import messages_outbox as outbox
from kiosk.engine.store import Store
from kiosk.i18n import DOMAIN, LOCALE_DIR

pytestmark = pytest.mark.display

GERMAN = gettext.translation(DOMAIN, LOCALE_DIR, languages=["de"])
SCARF = "200000000001" + catalog.ean_check_digit("200000000001")


def seed(store: Store) -> dict[str, str]:
    """One article; Anna with an e-mail, Bert with only a mobile, Carl with only a landline."""
    stored_value.set_connectivity(store, True)
    settings.set(store, "shop.name", "Modehaus Test")
    group = catalog.save_group(store, "Accessories", kind="goods")
    catalog.save_product(store, "Wool scarf", 2995, group_id=group, eans=[SCARF])
    anna = customers.create(store, {"first_name": "Anna", "last_name": "Berger",
                                    "email": "anna@example.org"}, force=True)  # fmt: skip
    bert = customers.create(store, {"first_name": "Bert", "last_name": "Kuhn",
                                    "mobile": "0171 1234567"}, force=True)  # fmt: skip
    carl = customers.create(store, {"first_name": "Carl", "last_name": "Lenz",
                                    "phone": "0228 123456"}, force=True)  # fmt: skip
    return {"anna": anna["id"], "bert": bert["id"], "carl": carl["id"]}


@pytest.fixture(scope="module")
def till(xdisplay, tmp_path_factory):
    from tests.support.kivy_driver import running_till

    with running_till(tmp_path_factory.mktemp("till-ereceipt"), seed, printer=Dummy()) as driver:
        yield driver


@pytest.fixture
def ui(till):
    """The till at home: empty basket, no customer, no popup, keyboard closed."""
    from kiosk.screens.ereceipt import WhatsAppPopup

    app = till.app
    for popup in till.find_all(WhatsAppPopup):
        popup.dismiss()
    if app.keyboard.target is not None:
        app.keyboard.target.focus = False
    app.screen("payment").next_customer()
    app.sale.cancel()
    app.receipt_printer.clear()
    till.pump(3)
    return till


def de(msgid: str, **values) -> str:
    return GERMAN.gettext(msgid).format(**values)


def ereceipts(screen) -> list[outbox.Message]:
    """The e-receipts queued for the sale the payment screen just completed."""
    key = f"ereceipt:{screen.completed.id}"
    return [m for m in outbox.pending(screen.store, limit=1000) if m.ref == key]


def sell(ui, customer_id: str, mode: str):
    """Ring up a scarf for the customer, pay cash on the payment screen, complete the sale."""
    app = ui.app
    settings.set(app.store, "ereceipt.mode", mode)
    app.session.attach(customer_id)
    app.sale.add_product(SCARF)
    ui.tap(ui.find("pay"))
    ui.wait_until(lambda: app.screens.current == "payment", what="payment screen")
    screen = app.screen("payment")
    ui.wait_until(lambda: ui.find("amount_input").text == "29,95", what="amount prefilled")
    ui.tap(ui.find("pay_cash"))
    ui.wait_until(lambda: screen.ready, what="paid")
    ui.tap(ui.find("complete"))
    ui.wait_until(lambda: screen.printed, timeout=10, what="receipt printed")
    assert b"Wool scarf" in app.receipt_printer.output  # the printed receipt is unaffected
    return screen, screen.ids.ereceipt


def texture_image(texture):
    """A texture's pixels as a PIL image, top row first, as the texture is drawn."""
    from PIL import Image

    w, h = texture.size
    image = Image.frombytes("RGBA", (w, h), bytes(texture.pixels))
    if texture.uvsize[1] > 0:  # drawn unflipped: the first row in memory is the bottom one
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return image.convert("L")


def assert_qr_encodes(texture, data: str) -> None:
    """The texture shows exactly the QR code of ``data`` (same modules, same orientation)."""
    import qrcode

    code = qrcode.QRCode(border=2)
    code.add_data(data)
    code.make(fit=True)
    expected = code.get_matrix()
    n = len(expected)
    gray = texture_image(texture)
    w, h = gray.size
    assert w == h and w % n == 0, f"texture {w}x{h} is not a {n}-module QR code"
    box = w // n
    shown = [[gray.getpixel((c * box + box // 2, r * box + box // 2)) < 128 for c in range(n)]
             for r in range(n)]  # fmt: skip
    assert shown == expected


def test_always_sends_at_once_when_the_email_is_known(ui, artifacts_dir):
    screen, prompt = sell(ui, ui.ids["anna"], "always")
    ui.wait_until(lambda: prompt.state == "done", what="e-receipt queued")
    [mail] = ereceipts(screen)
    assert mail.channel == "email" and mail.recipient == "anna@example.org"
    assert mail.subject == "Ihr Kassenbon" and mail.reason == "receipt"
    assert messaging.receipt_sale_id({"key": mail.ref}) == screen.completed.id
    shown = ui.find("ereceipt_message")
    assert shown.text == de("The receipt goes by e-mail to {email}.", email="anna@example.org")
    assert not ui.find_all(text=de("Yes")), "nothing to answer"
    ui.screenshot(artifacts_dir / "ereceipt-always-sent.png")


def test_always_without_email_asks_a_bad_address_changes_nothing(ui, artifacts_dir):
    store = ui.app.store
    bert = ui.ids["bert"]
    screen, prompt = sell(ui, bert, "always")
    ui.wait_until(lambda: prompt.state == "ask", what="asked for the address")
    assert ui.find("ereceipt_question").text == de("E-mail address for the receipt?")
    field = ui.find("email_input")
    ui.type_text("bert(at)example", into=field, per_key_frames=0)
    ui.tap(ui.find("ereceipt_yes"))
    message = ui.find("ereceipt_message")
    ui.wait_until(lambda: message.text and prompt.error, what="refusal shown")
    assert field.has_error and prompt.state == "ask"
    assert ereceipts(screen) == [] and not customers.get(store, bert).get("email")
    ui.screenshot(artifacts_dir / "ereceipt-bad-address.png")

    field.text = ""
    ui.type_text("bert@example.org", into=field, per_key_frames=0)
    ui.press_key("enter")
    ui.wait_until(lambda: prompt.state == "done", what="e-receipt queued")
    [mail] = ereceipts(screen)
    assert mail.recipient == "bert@example.org" and not field.has_error
    assert customers.get(store, bert)["email"] == "bert@example.org", "the address is added to Bert"

    # the same sale as a WhatsApp message to Bert: the QR code of the wa.me link
    ui.tap(ui.find("sale_whatsapp"))
    popup = ui.wait_until(lambda: getattr(ui.app, "whatsapp_popup", None), what="QR popup")
    ui.wait_until(lambda: popup.ids.qr.texture is not None, what="QR code")
    text = urllib.parse.parse_qs(urllib.parse.urlsplit(popup.url).query)["text"][0]
    assert popup.url.startswith("https://wa.me/491711234567?text=")
    assert text == "\n".join([de("Hello {first_name},", first_name="Bert"),
                              de("Your receipt {receipt}: {total}. Thank you for your visit!",
                                 receipt=screen.last_receipt_no, total="29,95 €"),
                              "Modehaus Test"])  # fmt: skip
    assert_qr_encodes(popup.ids.qr.texture, popup.url)
    ui.tap(ui.find("close_whatsapp"))
    ui.wait_until(lambda: not ui.find_all(type(popup)), what="popup closed")


def test_suggest_asks_with_the_known_address_never_asks_nothing(ui):
    screen, prompt = sell(ui, ui.ids["anna"], "suggest")
    ui.wait_until(lambda: prompt.state == "ask", what="suggestion")
    assert ui.find("ereceipt_question").text == de("Receipt by e-mail to {email}?", email="anna@example.org")
    assert not ui._is_shown(prompt.ids.email_input), "no address field"
    ui.tap(ui.find("ereceipt_no"))
    ui.wait_until(lambda: prompt.state == "hidden", what="prompt closed")
    assert ereceipts(screen) == []

    ui.tap(ui.find("next_customer"))
    ui.wait_until(lambda: ui.app.screens.current == "till", what="back at the till")
    screen, prompt = sell(ui, ui.ids["anna"], "never")
    ui.pump(3)
    assert prompt.state == "hidden" and not ui.find_all(text=de("Yes"))
    assert ereceipts(screen) == []


def test_whatsapp_qr_on_the_customer_detail(ui, artifacts_dir):
    from kiosk.screens.ereceipt import WhatsAppPopup

    app = ui.app
    app.show("customer_detail", customer_id=ui.ids["bert"])
    ui.wait_until(lambda: app.screens.current == "customer_detail", what="detail screen")
    message = ui.find("whatsapp_message")
    assert message.text == de("Hello {first_name},", first_name="Bert")
    ui.type_text(" Ihre Bestellung ist da!", into=message, per_key_frames=0)
    message.focus = False
    ui.tap(ui.find("whatsapp"))
    [popup] = ui.wait_until(lambda: ui.find_all(WhatsAppPopup), what="QR popup")
    expected = messaging.click_to_chat("+491711234567", "Hallo Bert, Ihre Bestellung ist da!")
    assert popup.url == expected
    assert ui.find("whatsapp_number").text == "0171 1234567"
    assert_qr_encodes(popup.ids.qr.texture, expected)
    ui.screenshot(artifacts_dir / "whatsapp-qr.png")
    ui.tap(ui.find("close_whatsapp"))
    ui.wait_until(lambda: not ui.find_all(WhatsAppPopup), what="popup closed")

    # Carl has only a landline: a clear message, no code
    app.show("customer_detail", customer_id=ui.ids["carl"])
    ui.wait_until(lambda: ui.find("whatsapp_message").text.startswith("Hallo Carl"), what="Carl shown")
    ui.tap(ui.find("whatsapp"))
    warning = de("{name} has no mobile number. Add one with Edit first.", name="Carl Lenz")
    ui.wait_until(lambda: warning in ui.texts(), what="no-mobile message")
    assert not ui.find_all(WhatsAppPopup)
