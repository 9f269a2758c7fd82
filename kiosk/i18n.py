"""Translations through gettext: German first; French and English catalogs can follow.

Message ids are English; ``kiosk/locale/<lang>/LC_MESSAGES/kiosk.po`` holds the translations
and ``python -m kiosk.i18n compile`` writes the ``.mo`` files shipped with the package.
No Kivy import here: the engine uses the same catalog for its validation messages.
"""

from __future__ import annotations

import gettext
import sys
from pathlib import Path

DOMAIN = "kiosk"
LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "de"

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def set_language(language: str) -> None:
    """Switch the process-wide language; unknown languages fall back to the English ids."""
    global _translation, _language
    _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)
    _language = language


def language() -> str:
    return _language


def _(message: str) -> str:
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet (labels in tables)."""
    return message


SOURCE_ROOTS = (Path(__file__).parent, Path(__file__).parent.parent / "mqtt-hub" / "storehub")
_KV_RE = None


def extract_kv(fileobj, keywords, comment_tags, options):
    """Babel extractor for .kv files: finds ``_('text')`` calls in Kivy rules."""
    import re

    global _KV_RE
    if _KV_RE is None:
        _KV_RE = re.compile(r"""\b_\(\s*(?P<q>['"])(?P<text>(?:\\.|(?!(?P=q)).)*)(?P=q)\s*\)""")
    for lineno, line in enumerate(fileobj.read().decode("utf-8").splitlines(), start=1):
        for match in _KV_RE.finditer(line):
            text = match.group("text")
            if "\\" in text:  # escapes like \n, without mangling non-ASCII text such as "…"
                text = text.encode("latin-1", "backslashreplace").decode("unicode_escape")
            yield lineno, "_", text, []


def extract_messages():
    """Collect every translatable message of the project into a Babel catalog."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    method_map = [
        ("**/locale/**", "ignore"),
        ("**.py", "python"),
        ("**.kv", "kiosk.i18n:extract_kv"),
        ("**/templates/**.html", "jinja2"),
    ]
    catalog = Catalog(project="retail-kiosk", charset="utf-8")
    for root in SOURCE_ROOTS:
        if not root.exists():
            continue
        for filename, lineno, message, comments, context in extract_from_dir(
            str(root), method_map=method_map, options_map={"**/templates/**.html": {}}
        ):
            catalog.add(message, None, [(str(root.name + "/" + filename), lineno)],
                        auto_comments=comments, context=context)  # fmt: skip
    return catalog


def update_catalogs() -> list[Path]:
    """Merge newly extracted messages into every language's .po (translations are kept)."""
    from babel.messages.pofile import read_po, write_po

    template = extract_messages()
    written = []
    for po_path in sorted(LOCALE_DIR.glob("*/LC_MESSAGES/kiosk.po")):
        with po_path.open("rb") as fh:
            catalog = read_po(fh)
        catalog.update(template, no_fuzzy_matching=True)
        with po_path.open("wb") as fh:
            write_po(fh, catalog, width=100, sort_output=True, ignore_obsolete=True,
                     include_lineno=False)  # fmt: skip
        written.append(po_path)
    return written


def compile_catalogs() -> list[Path]:
    """Compile every ``.po`` under LOCALE_DIR into its ``.mo`` (uses Babel)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po_path in sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po")):
        with po_path.open("rb") as fh:
            catalog = read_po(fh)
        mo_path = po_path.with_suffix(".mo")
        with mo_path.open("wb") as fh:
            write_mo(fh, catalog)
        written.append(mo_path)
    return written


set_language(DEFAULT_LANGUAGE)

if __name__ == "__main__":
    if sys.argv[1:] == ["compile"]:
        for path in compile_catalogs():
            print(path)
    elif sys.argv[1:] == ["update"]:
        for path in update_catalogs():
            print(path)
    else:
        print("usage: python -m kiosk.i18n update|compile", file=sys.stderr)
        sys.exit(2)
