"""The German catalog is complete and compiled; French and English can follow."""

from __future__ import annotations

import io

from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from kiosk import i18n

DE_PO = i18n.LOCALE_DIR / "de" / "LC_MESSAGES" / "kiosk.po"


def _de_catalog():
    with DE_PO.open("rb") as fh:
        return read_po(fh)


def test_every_message_has_a_german_translation():
    """GIVEN the project's sources WHEN messages are extracted THEN each is translated."""
    catalog = _de_catalog()
    def translated(msg) -> bool:
        got = catalog.get(msg.id, msg.context)
        if got is None or got.fuzzy:
            return False
        forms = got.string if isinstance(got.string, tuple) else (got.string,)
        return all(forms)  # every plural form, not just a non-empty tuple

    missing = [msg.id for msg in i18n.extract_messages() if msg.id and not translated(msg)]
    assert not missing, "untranslated (run python -m kiosk.i18n update, translate): %s" % missing


def _messages(catalog) -> dict:
    # the header is left out: Babel writes its own version into it ("Generated-By")
    def plain(value):  # a plural's forms come as a list or a tuple
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return {(plain(m.id), m.context): plain(m.string) for m in catalog if m.id and not m.fuzzy}


def test_compiled_catalog_matches_po():
    """GIVEN de.po WHEN compiled THEN the shipped .mo has the same messages."""
    buf = io.BytesIO()
    write_mo(buf, _de_catalog())
    buf.seek(0)
    with DE_PO.with_suffix(".mo").open("rb") as fh:
        shipped = _messages(read_mo(fh))
    assert shipped == _messages(read_mo(buf)), "kiosk.mo is stale: run python -m kiosk.i18n compile"
    assert len(shipped) > 100


def test_german_is_the_default_and_placeholders_survive():
    i18n.set_language("de")
    try:
        catalog = _de_catalog()
        for msg in catalog:
            if msg.id and msg.string:
                for placeholder in ("{n}", "{field}", "{name}", "{choices}", "{reason}"):
                    if placeholder in msg.id:
                        assert placeholder in msg.string, (msg.id, msg.string)
        assert i18n._("Last name") == "Nachname"
    finally:
        i18n.set_language("de")
