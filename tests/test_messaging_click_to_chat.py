"""WhatsApp click-to-chat links (shops without the Cloud API): numbers, text, one copy of it."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from kiosk.engine import messaging


@pytest.mark.parametrize("typed", ["0171 1234567", "0171/1234567", "+49 171 1234567",
                                   "0049 171 1234567", "+491711234567", "(0171) 123 45 67"])  # fmt: skip
def test_german_numbers_become_international(typed):
    assert messaging.click_to_chat(typed) == "https://wa.me/491711234567"


def test_foreign_numbers_keep_their_country():
    assert messaging.click_to_chat("+43 664 1234567") == "https://wa.me/436641234567"
    assert messaging.click_to_chat("0043 664 1234567") == "https://wa.me/436641234567"


def test_text_is_url_encoded_and_round_trips():
    text = "Hallo Jürgen,\nIhr Beleg 1-0042: 79,45 € & mehr? 50% / #1"
    url = messaging.click_to_chat("0171 1234567", text)
    base, _, query = url.partition("?")
    assert base == "https://wa.me/491711234567"
    assert query.startswith("text=")
    encoded = query[len("text="):]
    # only unreserved characters and %XX escapes: nothing can end or split the query
    assert re.fullmatch(r"(?:[A-Za-z0-9_.~-]|%[0-9A-F]{2})+", encoded), encoded
    assert "%0A" in encoded and "%26" in encoded and "%23" in encoded and "%3F" in encoded
    assert "%C3%BC" in encoded and "%E2%82%AC" in encoded  # UTF-8, percent-encoded
    assert urllib.parse.parse_qs(query) == {"text": [text]}


@pytest.mark.parametrize("bad", ["", "   ", None, "abc", "0171", "12"])
def test_no_or_bad_number_is_refused_with_a_message(bad):
    with pytest.raises(messaging.MessagingError) as exc:
        messaging.click_to_chat(bad, "Hallo")
    assert str(exc.value)


def test_whatsapp_number_prefers_the_mobile_and_skips_landlines():
    assert messaging.whatsapp_number({"mobile": "+491711234567", "phone": "+49228123456"}) == "+491711234567"
    assert messaging.whatsapp_number({"phone": "+491601234567"}) == "+491601234567"  # a mobile in "phone"
    assert messaging.whatsapp_number({"phone": "+49228123456"}) is None  # Bonn landline
    assert messaging.whatsapp_number({}) is None


def test_the_hub_uses_the_engine_link_builder():
    from storehub.messaging import channels

    assert channels.click_to_chat is messaging.click_to_chat
