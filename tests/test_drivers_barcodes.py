"""Barcode validation: check digits, symbologies, garbage refused with a clear reason."""

from __future__ import annotations

import pytest

from kiosk.drivers import barcodes
from kiosk.drivers.barcodes import BarcodeError, identify


@pytest.fixture(autouse=True)
def english():
    from kiosk import i18n

    before = i18n.language()
    i18n.set_language("en")
    yield
    i18n.set_language(before)


@pytest.mark.parametrize(
    ("text", "symbology", "gtin"),
    [
        ("4006381333931", "ean13", "04006381333931"),
        ("96385074", "ean8", "00000096385074"),
        ("036000291452", "upca", "00036000291452"),
        ("04252614", "upce", "00042100005264"),
        ("]E04006381333931", "ean13", "04006381333931"),  # AIM identifier removed
        ("]E496385074", "ean8", "00000096385074"),
    ],
)
def test_valid_gs1_codes_are_identified_with_their_gtin(text, symbology, gtin):
    code = identify(text)
    assert (code.symbology, code.gtin) == (symbology, gtin)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4006381333932", "EAN-13: check digit is 2, expected 1"),
        ("96385075", "EAN-8: check digit is 5, expected 4"),
        ("036000291453", "UPC-A: check digit is 3, expected 2"),
    ],
)
def test_wrong_check_digit_is_refused_with_the_expected_digit(text, expected):
    with pytest.raises(BarcodeError) as err:
        identify(text)
    assert err.value.code == "check_digit"
    assert expected in str(err.value)


def test_every_single_digit_error_in_an_ean13_is_caught():
    good = "4006381333931"
    for pos in range(13):
        for digit in "0123456789":
            if digit == good[pos]:
                continue
            bad = good[:pos] + digit + good[pos + 1 :]
            with pytest.raises(BarcodeError):
                identify(bad, ("ean13",))


def test_gs1_check_digit_matches_known_codes():
    assert barcodes.gs1_check_digit("400638133393") == 1
    assert barcodes.gs1_check_digit("9638507") == 4
    assert barcodes.gs1_check_digit("03600029145") == 2
    assert barcodes.has_valid_check_digit("4006381333931")
    assert not barcodes.has_valid_check_digit("4006381333930")


@pytest.mark.parametrize(
    "text", ["ART-4711/Gr.XL", "LAGER@B{7}[3]\\x|~", "]C0ABC-123", "12345"]
)
def test_code128_accepts_printable_ascii(text):
    code = identify(text)
    assert code.symbology == "code128"
    assert code.gtin is None


def test_gs1_128_keeps_the_fnc1_separator():
    code = identify("]C10104012345123456\x1d10LOT42", ("ean13", "gs1-128"))
    assert code.symbology == "gs1-128"
    assert code.text == "0104012345123456\x1d10LOT42"


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("ART\x07X", "charset", "Unexpected character '\\x07'"),
        ("Zz\u00df4711", "charset", "keyboard layout does not match"),  # ß: US scanner on de
        ("", "length", "Empty scan"),
        ("9" * 81, "length", "longer than 80"),
        ("]Q3ABC", "symbology", "Unknown symbology identifier"),
        ("]E0ABC", "charset", "digits only"),
        ("]E012345", "length", "5 digits is not a valid length"),
    ],
)
def test_garbage_is_refused_with_a_clear_reason(text, code, words):
    with pytest.raises(BarcodeError) as err:
        identify(text)
    assert err.value.code == code
    assert words in str(err.value)


def test_switched_off_symbologies_are_refused():
    with pytest.raises(BarcodeError) as err:
        identify("ART-1", ("ean13", "ean8"))
    assert err.value.code == "symbology"
    with pytest.raises(BarcodeError) as err:
        identify("12345", ("ean13",))
    assert err.value.code == "symbology"
