"""Customer search as you type: exact number look-ups, FTS5 prefix tiers, Kölner Phonetik.

What the cashier types is matched in this order, and the list shows the tiers in this order:

0. a complete customer, card number or e-mail address: a B-tree look-up (a scanned card of
   eight or more characters that hits ends the search there);
1. an exact last name ("meier" → Meier, before Meierhofer), the other words as prefixes;
2. a last name starting with a typed word ("mül tho" → Thomas Müller: any order);
3. other name words (first names, company);
4. any field: postcode, city, phone (0171…, +49 171…, with spaces), e-mail, numbers;
5. sound-alikes by Kölner Phonetik (Mayer, Maier, Meyer for "Meier"), only to fill the page.

Inside a tier the longest-standing customers come first (FTS5 reads rowids forwards faster
than backwards) and the page shows them alphabetically.

Three FTS5 tables hold the index, all rebuilt from the customer row by :func:`index`:
``customer_fts`` has every searchable token (detail=none: smallest and fastest), and
``customer_names`` only name words and their phonetic codes, so the name tiers never wade
through the postcodes and e-mail domains that a whole shop shares. Its columns: ``last``, the
last-name words marked (``0mueller``: a term space of their own, so a last-name tier never
steps through first names), ``other``, every name word, and ``phon``. Words are
folded (``Müller`` → ``mueller`` and ``muller``) so whatever a cashier types for an umlaut
matches. Prefix indexes for 1–6 characters make short prefixes lazy doclist reads instead of
merges of thousands of terms. ``customer_pairs`` holds each last-name word's starts paired with
each name word's starts (``blum0wer``), so two short words, the densest texts ("blum wer"),
find their last-name tiers as one whole term instead of an AND of two long lists.

Short prefixes match huge sets ("ma": every tenth customer), so nothing is ranked in SQL.
The tiers run as one compound SELECT (an arm per tier, each joined to the row the list
shows) and reading stops as soon as the page is full: when "mü" fills the page with last
names, the broader arms never run. Below the last-name tiers, each tier of several words
repeats the words' costly AND, so a text of several words first reads one broader arm alone
(see _probed): when it holds no more than the page, every match of the tiers it covers is in
hand and is sorted into tiers in Python.

The background upkeep (:class:`IndexUpkeep`) merges the index into one segment per table
at most once a day; an index written customer by customer keeps 10 to 20 segments, which
makes every search look each term up that many times.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import cologne_phonetics
from sqlite_utils import Migrations

_LOGGER = logging.getLogger(__name__)

# German transliteration first (what Germans type without umlauts), then letters that
# Unicode does not decompose (Yılmaz, Wiśniewski's ł) so they fold to plain ASCII too.
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i", "ł": "l",
                       "ø": "o", "đ": "d", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d"})  # fmt: skip
_PLAIN = str.maketrans({"ß": "ss", "ı": "i", "ł": "l", "ø": "o", "đ": "d", "æ": "ae",
                        "œ": "oe", "þ": "th", "ð": "d"})  # fmt: skip
_TOKEN_RE = re.compile(r"[a-z0-9]+")
# what customers.assign_card accepts, with at least one digit
_NUMBER_RE = re.compile(r"^(?=.*[0-9])[A-Za-z0-9#\-]{4,32}$")
# Last-name words are indexed a second time with this mark in front ("0mueller"), in a term
# space of their own: "last name starts with an" then reads only last names, instead of
# stepping through every Anna and Andreas with a column filter (1.8 ms at 1M customers).
# Typed name tokens are letters only, so they never reach a marked term by accident.
LAST_MARK = "0"
_PHONETIC_MIN_LEN = 4  # shorter words have codes so coarse they match everyone
SCAN_MIN_LEN = 8  # a number this long that hits exactly is a scan: show only its owner
_SPARSE_WORD_LEN = 5  # a text with a word this long is probed for being sparse (see run)

# The first index layout, created by the released migration customers.m001; replaced by
# this module's m001 below. Kept verbatim because released migrations never change.
FTS_SCHEMA = (
    "CREATE VIRTUAL TABLE customer_fts USING fts5("
    "names, phon, place, contact, numbers,"
    " tokenize = 'unicode61 remove_diacritics 0', prefix = '2 3', detail = column)"
)

# The second layout (m001 below), kept verbatim for that released migration.
_TOKENIZE_V2 = "tokenize = 'unicode61 remove_diacritics 0', prefix = '1 2 3 4'"
ALL_SCHEMA_V2 = (
    "CREATE VIRTUAL TABLE customer_fts USING fts5("
    f"names, place, contact, numbers, {_TOKENIZE_V2}, detail = none)"
)
NAMES_SCHEMA_V2 = (
    "CREATE VIRTUAL TABLE customer_names USING fts5("
    f"last, other, phon, {_TOKENIZE_V2}, detail = column)"
)
# Prefixes of up to 6 characters are indexed: "chris" or "stefa" would otherwise merge the
# doclists of every name they start (Christian, Christina, …) on each keystroke.
_PREFIX_INDEX_MAX = 6
_TOKENIZE = "tokenize = 'unicode61 remove_diacritics 0', prefix = '1 2 3 4 5 6'"
ALL_SCHEMA = (
    "CREATE VIRTUAL TABLE customer_fts USING fts5("
    f"names, place, contact, numbers, {_TOKENIZE}, detail = none)"
)
NAMES_SCHEMA = (
    "CREATE VIRTUAL TABLE customer_names USING fts5("
    f"last, other, phon, {_TOKENIZE}, detail = column)"
)
# The third layout of customer_names (m003): a marked last-name prefix is one character
# longer ("muelle" → "0muelle"), so its prefix indexes go to 7 characters; without that, a
# six-letter last-name prefix merged the doclists of every name it starts (0.7 ms for "muelle").
MARKED_NAMES_SCHEMA = (
    "CREATE VIRTUAL TABLE customer_names USING fts5(last, other, phon,"
    " tokenize = 'unicode61 remove_diacritics 0', prefix = '1 2 3 4 5 6 7', detail = column)"
)

# Name pairs (m004): for every last-name word and every name word of a customer, the pairs of
# their starts up to 4 letters ("blum0wer": last name Blum…, a name Wer…) and, for a last word
# of up to 4 letters, the whole word with a name's start ("vogt00em"). Two short typed words,
# the densest texts of all ("blum wer": 10,000 Blum… and 20,000 Wer…), are then one doclist
# read per tier instead of an AND that steps through both lists. No prefix indexes: every
# query is a whole term. Contentless: the terms (36 a customer) would take 300 bytes of content
# each; a stale entry is deleted with the terms computed again from customer_names (index), so
# a change to _pairs needs a migration that rebuilds this table.
_PAIR_MAX = 4
PAIRS_SCHEMA = (
    "CREATE VIRTUAL TABLE customer_pairs USING fts5(pairs, content = '',"
    " tokenize = 'unicode61 remove_diacritics 0', detail = none)"
)

TABLES = ("customer_fts", "customer_names", "customer_pairs")  # every index table

# Applied after kiosk.customers (it reads customer rows): customers registers this set.
migrations = Migrations("kiosk.search")


@migrations()
def m001_two_tables(db) -> None:
    db.execute("DROP TABLE IF EXISTS customer_fts")
    db.execute(ALL_SCHEMA_V2)
    db.execute(NAMES_SCHEMA_V2)
    rebuild(db)


@migrations()
def m002_six_character_prefixes(db) -> None:
    db.execute("DROP TABLE customer_fts")
    db.execute("DROP TABLE customer_names")
    db.execute(ALL_SCHEMA)
    db.execute(NAMES_SCHEMA)
    rebuild(db)


@migrations()
def m003_marked_last_names(db) -> None:
    # customer_names.last holds marked words, and .other every plain name word (see index)
    db.execute("DROP TABLE customer_names")
    db.execute(MARKED_NAMES_SCHEMA)
    rebuild(db, tables=("customer_names",))


@migrations()
def m004_name_pairs(db) -> None:
    db.execute("DROP TABLE IF EXISTS customer_pairs")
    db.execute(PAIRS_SCHEMA)
    rebuild(db, tables=("customer_pairs",))


# -- folding -------------------------------------------------------------------------------
def _strip_marks(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    )


@lru_cache(maxsize=65536)
def word_variants(word: str) -> tuple[str, ...]:
    """Return the searchable spellings of one word: umlauts as ae/oe/ue and plain vowels."""
    lower = word.lower()
    out: list[str] = []
    for variant in (_strip_marks(lower.translate(_FOLD)), _strip_marks(lower.translate(_PLAIN))):
        for tok in _TOKEN_RE.findall(variant):
            if tok not in out:
                out.append(tok)
    return tuple(out)


def fold(text: str) -> list[str]:
    """Turn typed text into query tokens (German transliteration of umlauts)."""
    return _TOKEN_RE.findall(_strip_marks(text.lower().translate(_FOLD)))


@lru_cache(maxsize=65536)
def phonetic(word: str) -> str:
    """Kölner Phonetik code of a word ('' for words without letters)."""
    codes = [code for _, code in cologne_phonetics.encode(word) if code]
    return " ".join(codes)


def _email_parts(email: str) -> str:
    """Local part and domain labels without the top-level domain (".de" is everyone's)."""
    local, _at, domain = email.partition("@")
    labels = domain.split(".")
    return " ".join([local, *(labels[:-1] if len(labels) > 1 else labels)])


def query_tokens(text: str) -> list[str]:
    """Fold typed text into tokens, reading e-mail addresses the way they are indexed."""
    if "@" in text:
        text = _email_parts(text.strip())
    return fold(text)


# -- the index -----------------------------------------------------------------------------------
def _words(*values: str | None) -> list[str]:
    tokens: list[str] = []
    for value in values:
        if value:
            for word in value.split():
                for tok in word_variants(word):
                    if tok not in tokens:
                        tokens.append(tok)
    return tokens


def _phone_tokens(e164: str | None) -> list[str]:
    """Index a phone number as typed in Germany (0171…) and internationally (49171…)."""
    if not e164:
        return []
    digits = e164.lstrip("+")
    tokens = [digits]
    if e164.startswith("+49"):
        tokens.append("0" + digits[2:])
    return tokens


@dataclass(frozen=True)
class Document:
    """The index rows of one customer."""

    last: str
    other: str
    phon: str
    place: str
    contact: str
    numbers: str

    @property
    def names(self) -> str:
        return f"{self.last} {self.other}".strip()

    @property
    def pairs(self) -> str:
        """customer_pairs' terms, from the last and all name words (see _pairs)."""
        return _pairs_text(self.last.split(), self.names.split())


def document(row: dict[str, Any], card_numbers: Iterable[str]) -> Document:
    """Build the index rows of a customer record."""
    phon = [
        code
        for word in f"{row.get('first_name') or ''} {row.get('last_name') or ''}".split()
        for code in phonetic(word).split()
    ]
    contact = _words(_email_parts(row["email"])) if row.get("email") else []
    for key in ("phone", "mobile"):
        for tok in _phone_tokens(row.get(key)):
            if tok not in contact:
                contact.append(tok)
    return Document(
        last=" ".join(_words(row.get("last_name"))),
        other=" ".join(_words(row.get("first_name"), row.get("company"))),
        phon=" ".join(dict.fromkeys(phon)),
        place=" ".join(_words(row.get("postcode"), row.get("city"))),
        contact=" ".join(contact),
        numbers=" ".join([row.get("customer_no") or "", *card_numbers]).strip(),
    )


def _pairs_text(last: list[str], names: list[str]) -> str:
    return " ".join(_pairs(last, list(dict.fromkeys(names))))


def _pairs(last: list[str], names: list[str]) -> list[str]:
    """customer_pairs terms: each last word's starts with each name word's starts (the last
    word itself included, as the name tiers' SQL lets one word answer both typed words)."""
    terms: dict[str, None] = {}
    for word in last:
        for name in names:
            heads = [name[:j] for j in range(1, min(_PAIR_MAX, len(name)) + 1)]
            for k in range(1, min(_PAIR_MAX, len(word)) + 1):
                terms.update((f"{word[:k]}0{head}", None) for head in heads)
            if len(word) <= _PAIR_MAX:
                terms.update((f"{word}00{head}", None) for head in heads)
    return list(terms)


def index(
    db,
    rowid: int,
    row: dict[str, Any],
    card_numbers: Iterable[str],
    tables: Iterable[str] = TABLES,
    emptied: Iterable[str] = (),
) -> None:
    """(Re)index one customer; call inside the transaction that changed it. ``tables`` limits
    the index tables written (a migration runs before later ones create theirs); ``emptied``
    are tables a rebuild has just emptied."""
    doc = document(row, card_numbers)
    conn = db.conn
    # An edit that leaves a table's entry as it was (most edits touch one or two fields)
    # rewrites nothing: FTS5 deletes and inserts are the costly part of applying an event.
    fts = (doc.names, doc.place, doc.contact, doc.numbers)
    old = conn.execute(
        "SELECT names, place, contact, numbers FROM customer_fts WHERE rowid = ?", [rowid]
    ).fetchone()
    if "customer_fts" in tables and old != fts:
        if old is not None:
            conn.execute("DELETE FROM customer_fts WHERE rowid = ?", [rowid])
        conn.execute(
            "INSERT INTO customer_fts (rowid, names, place, contact, numbers)"
            " VALUES (?, ?, ?, ?, ?)",
            [rowid, *fts],
        )
    names = (" ".join(LAST_MARK + w for w in doc.last.split()), doc.names, doc.phon)
    old = conn.execute(
        "SELECT last, other, phon FROM customer_names WHERE rowid = ?", [rowid]
    ).fetchone()
    if "customer_names" in tables and old != names:
        if old is not None:
            conn.execute("DELETE FROM customer_names WHERE rowid = ?", [rowid])
        conn.execute(
            "INSERT INTO customer_names (rowid, last, other, phon) VALUES (?, ?, ?, ?)",
            [rowid, *names],
        )
    if "customer_pairs" in tables:
        # a customer has pairs exactly when it has names, computed from them (contentless)
        stale = None if old is None or "customer_pairs" in emptied else old
        if stale is None or stale[:2] != names[:2]:
            if stale is not None:
                _delete_pairs(conn, rowid, stale)
            conn.execute(
                "INSERT INTO customer_pairs (rowid, pairs) VALUES (?, ?)", [rowid, doc.pairs]
            )


def _delete_pairs(conn: sqlite3.Connection, rowid: int, names_row: tuple) -> None:
    """Delete a customer's pairs from the contentless table: FTS5 needs the indexed terms."""
    last = [w[len(LAST_MARK) :] for w in names_row[0].split()]
    conn.execute(
        "INSERT INTO customer_pairs (customer_pairs, rowid, pairs) VALUES ('delete', ?, ?)",
        [rowid, _pairs_text(last, names_row[1].split())],
    )


def unindex(db, rowid: int) -> None:
    """Remove a customer from the index (erased, merged away)."""
    conn = db.conn
    conn.execute("DELETE FROM customer_fts WHERE rowid = ?", [rowid])
    names = conn.execute(
        "SELECT last, other FROM customer_names WHERE rowid = ?", [rowid]
    ).fetchone()
    if names is not None:
        _delete_pairs(conn, rowid, names)
        conn.execute("DELETE FROM customer_names WHERE rowid = ?", [rowid])


def rebuild(db, tables: Iterable[str] | None = None) -> int:
    """Index every live customer from scratch in ``tables`` (default: every index table the
    database has; the others are rewritten only where their entry differs); returns how many
    customers were indexed."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'customers'").fetchone():
        return 0  # a fresh database: customers are indexed as they are created
    present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    present = tuple(t for t in TABLES if t in present)  # earlier migrations: not all exist yet
    emptied = set(present if tables is None else tables)
    if "customer_names" in emptied and "customer_pairs" in present:
        emptied.add("customer_pairs")  # its deletes are computed from customer_names
    for table in emptied:
        if table == "customer_pairs":  # contentless: no DELETE
            db.execute("INSERT INTO customer_pairs (customer_pairs) VALUES ('delete-all')")
        else:
            db.execute(f"DELETE FROM {table}")
    cards: dict[str, list[str]] = {}
    for card_no, customer_id in db.execute(
        "SELECT card_no, customer_id FROM customer_cards ORDER BY issued_at"
    ):
        cards.setdefault(customer_id, []).append(card_no)
    cursor = db.execute(
        "SELECT rowid, * FROM customers WHERE merged_into IS NULL AND erased_at IS NULL"
    )
    names = [d[0] for d in cursor.description]
    count = 0
    for values in cursor:  # reading customers while writing the index tables is fine
        row = dict(zip(names, values))
        index(db, row["rowid"], row, cards.get(row["id"], []), present, emptied)
        count += 1
    _LOGGER.info("search index rebuilt: %d customers", count)
    return count


# -- upkeep: one segment per index ---------------------------------------------------------
# FTS5 writes each transaction's changes as a new segment and merges them only in groups
# (automerge), so an index written customer by customer keeps 10 to 20 segments, and every
# query looks each term up in each of them. Merged into one, a search costs about half
# (bench/customer_search.py prints both).
# FTS5 %_data rowids are segment id << 37 | doclist-index flag, height, page (fts5Int.h).
_SEGMENT_SHIFT = 37
MERGED_AT = "search.merged_at"  # meta key: when the index was last merged into one segment


def segments(conn: sqlite3.Connection, table: str) -> int:
    """How many segments an index table has: one B-tree seek per segment."""
    count, segid = 0, 1  # segment id 0 holds the structure record, not a segment
    while True:
        row = conn.execute(
            f"SELECT id >> {_SEGMENT_SHIFT} FROM {table}_data WHERE id >= ? ORDER BY id LIMIT 1",
            [segid << _SEGMENT_SHIFT],
        ).fetchone()
        if row is None:
            return count
        count, segid = count + 1, row[0] + 1


def merge_step(conn: sqlite3.Connection, pages: int = 128) -> bool:
    """Merge both index tables towards one segment, writing about ``pages`` pages each.

    Returns whether work was done; call again until it returns False. Each call is its own
    short write (autocommit), so sales go on between steps.
    """
    worked = False
    for table in TABLES:
        before = conn.total_changes
        # a negative page count merges across levels, down to a single segment
        conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('merge', ?)", [-pages])
        worked |= conn.total_changes - before >= 2  # FTS5's documented "work was done" test
    return worked


def merge(conn: sqlite3.Connection, pages: int = 1024) -> int:
    """Merge the index into one segment per table at once; returns the steps taken."""
    steps = 0
    while merge_step(conn, pages):
        steps += 1
    _record_merge(conn)
    return steps


def _record_merge(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [MERGED_AT, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")],
    )


class IndexUpkeep:
    """Keeps the search index in few segments: an upkeep task for Store.start_checkpointer.

    Every ``check_every_s`` it counts the segments; with more than ``max_segments`` and no merge
    in the last ``min_interval_s`` (the whole index is rewritten: about 190 MB for a million
    customers, so at most once a day), it merges one step of ``pages`` pages per call, one
    call per checkpoint round, until one segment is left.
    """

    def __init__(
        self,
        max_segments: int = 4,
        check_every_s: float = 600.0,
        min_interval_s: float = 20 * 3600.0,
        pages: int = 64,  # a step holds the write lock for about 15 ms; a sale waits that long
    ) -> None:
        self.max_segments = max_segments
        self.check_every_s = check_every_s
        self.min_interval = dt.timedelta(seconds=min_interval_s)
        self.pages = pages
        self.merging = False
        self._next_check = 0.0

    def __call__(self, conn: sqlite3.Connection) -> None:
        if not self.merging:
            now = time.monotonic()
            if now < self._next_check:
                return
            self._next_check = now + self.check_every_s
            if not self._due(conn):
                return
            _LOGGER.info("merging the search index into one segment per table")
            self.merging = True
        if not merge_step(conn, self.pages):
            self.merging = False
            _record_merge(conn)
            _LOGGER.info("search index merged")

    def _due(self, conn: sqlite3.Connection) -> bool:
        if max(segments(conn, table) for table in TABLES) <= self.max_segments:
            return False
        row = conn.execute("SELECT value FROM meta WHERE key = ?", [MERGED_AT]).fetchone()
        if row is None:
            return True
        last = dt.datetime.fromisoformat(row[0])
        return dt.datetime.now(dt.timezone.utc) - last >= self.min_interval


# -- queries -----------------------------------------------------------------------------------------
# What the result list shows of a customer, in Hit's field order (c: the customers table).
LISTED_COLUMNS = (
    "c.id, c.customer_no, c.first_name, c.last_name, c.company, c.postcode, c.city,"
    " c.birth_date, c.email, c.phone, c.mobile, c.observation"
)

# Why a customer is on the list, best first (Hit.match).
MATCHES = ("exact", "last_name", "last_name_prefix", "name", "other", "phonetic")


class Hit(NamedTuple):
    """One customer on the result list (a tuple: built 20 times per keystroke, 4× cheaper
    than a frozen dataclass)."""

    id: str
    customer_no: str
    first_name: str | None
    last_name: str | None
    company: str | None
    postcode: str | None
    city: str | None
    birth_date: str | None
    email: str | None
    phone: str | None
    mobile: str | None
    observation: str | None
    fuzzy: bool = False  # a sound-alike, not what was typed
    match: str = "other"  # one of MATCHES

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.company or self.customer_no


@dataclass(frozen=True)
class Query:
    """The FTS5 expressions for one typed text; ``None`` where a tier cannot match."""

    tokens: tuple[str, ...]
    broad: str
    exact_last: str | None
    # one expression per typed word as the last name's start, the longest word first
    last_prefixes: tuple[str, ...]
    names: str | None
    phonetic: str | None
    # Words longer than the prefix indexes as whole words: a lazy doclist read, where their
    # prefix query merges every term they start (typed "Köln" in a shop where most customers
    # live in Köln: 0.3 ms instead of 170 ms). None when no word is that long.
    broad_words: str | None = None
    # A long run of digits may be the start of a phone number: its E.164 prefix, looked up as a
    # B-tree range (typed "+49221", the area code of half a Köln shop, merged 580,000 terms).
    phone_prefix: str | None = None
    # The last-name tiers are whole terms of customer_pairs (two short words), not
    # expressions over customer_names.
    paired: bool = False


def _prefixes(tokens: Iterable[str]) -> str:
    # Tokens are [a-z0-9]+ after folding, so quoting them is enough to make them literal.
    return " AND ".join(f'"{t}"*' for t in tokens)


def build_query(text: str) -> Query | None:
    tokens = query_tokens(text)
    if not tokens:
        return None
    broad = _prefixes(tokens)
    digits = "".join(tokens)
    if all(t.isdigit() for t in tokens) and (len(tokens) > 1 or digits.startswith("00")):
        # "0171 234 56" typed with spaces is one number; 0049… is the +49… token
        joined = digits[2:] if digits.startswith("00") else digits
        broad = f'({broad}) OR "{joined}"*'
    broad_words = None
    if " OR " not in broad and any(len(t) > _PREFIX_INDEX_MAX for t in tokens):
        broad_words = " AND ".join(f'"{t}"' if len(t) > _PREFIX_INDEX_MAX else f'"{t}"*'
                                   for t in tokens)  # fmt: skip
    phone_prefix = None
    if all(t.isdigit() for t in tokens) and len(digits) > _PREFIX_INDEX_MAX:
        if digits.startswith("00"):
            phone_prefix = "+" + digits[2:]
        elif digits.startswith("0"):
            phone_prefix = "+49" + digits[1:]  # numbers are indexed as German (_phone_tokens)
        else:
            phone_prefix = "+" + digits
    exact_last = names = fuzzy = None
    last_prefixes: tuple[str, ...] = ()
    paired = False
    if all(t.isalpha() for t in tokens):  # names hold no digits: skip the name tiers
        names = f"other : ({broad})"
        marked = [LAST_MARK + t for t in tokens]
        if len(tokens) == 1:  # the last-name match is the whole condition
            exact_last, last_prefixes = f'last : "{marked[0]}"', (f'last : "{marked[0]}"*',)
        elif len(tokens) == 2 and max(map(len, tokens)) <= _PAIR_MAX:
            # either word as the last name, the longer first (see _pairs)
            a, b = sorted(tokens, key=len, reverse=True)
            exact_last = f'"{a}00{b}" OR "{b}00{a}"'
            last_prefixes = tuple(dict.fromkeys((f'"{a}0{b}"', f'"{b}0{a}"')))
            paired = True
        else:
            exact_last = f"last : ({' OR '.join(f'{chr(34)}{t}{chr(34)}' for t in marked)}) AND {names}"
            # One expression per word as the last name's start, each ANDing only the other
            # words: "boc no" as (last boc…, other no…) fills a page in half the time of
            # (last boc… or no…) AND boc… AND no…, which steps through both dense lists.
            # The longest word first: the likelier last name, and the sparser list.
            order = sorted(range(len(tokens)), key=lambda i: -len(tokens[i]))
            last_prefixes = tuple(
                f'last : "{marked[i]}"* AND other : ({_prefixes(tokens[:i] + tokens[i + 1 :])})'
                for i in order
            )
        parts, sounds = [], False
        for tok in tokens:
            code = phonetic(tok) if len(tok) >= _PHONETIC_MIN_LEN else ""
            if code and " " not in code:
                parts.append(f'phon : "{code}"')
                sounds = True
            else:
                parts.append(f'other : "{tok}"*')
        fuzzy = " AND ".join(parts) if sounds else None
    return Query(tuple(tokens), broad, exact_last, last_prefixes, names, fuzzy, broad_words,
                 phone_prefix, paired)


# One SELECT per tier (an "arm"), compounded with UNION ALL in tier order. Each arm streams
# its rows in rowid order (no sort: FTS5 and the phone indexes deliver them so), joined to
# the row the list shows.
_LIVE = "c.merged_into IS NULL AND c.erased_at IS NULL"
_FTS_ARM = (
    "SELECT * FROM (SELECT {tier}, c.rowid{columns} FROM {table} f"
    " CROSS JOIN customers c ON c.rowid = f.rowid"
    " WHERE {table} MATCH ? AND {live} ORDER BY f.rowid)"
)
# the same arm from the index alone: rowids, no row loaded
_FTS_INDEX_ARM = "SELECT * FROM (SELECT {tier}, rowid FROM {table} WHERE {table} MATCH ? ORDER BY rowid)"
_PHONE_ARM = (
    "SELECT {tier}, c.rowid{columns} FROM customers c"
    " WHERE c.{column} >= ? AND c.{column} < ? AND {live}"
)
_ROW_COLUMNS = ", " + LISTED_COLUMNS
_LAST_NAME, _LAST_NAME_PREFIX, _NAME, _OTHER, _PHONETIC = map(MATCHES.index, MATCHES[1:])


@lru_cache(maxsize=64)
def _sql(arms: tuple[tuple[int, str], ...], rows: bool = True) -> str:
    """The compound SELECT of ``arms`` (tier, table or phone column); a handful of shapes exist.

    Without ``rows`` it reads the matching rowids from the indexes alone."""
    parts = []
    for tier, kind in arms:
        columns = _ROW_COLUMNS if rows else ""
        if kind in ("mobile", "phone"):
            parts.append(_PHONE_ARM.format(tier=tier, columns=columns, column=kind, live=_LIVE))
        elif rows:
            parts.append(_FTS_ARM.format(tier=tier, columns=columns, table=kind, live=_LIVE))
        else:
            parts.append(_FTS_INDEX_ARM.format(tier=tier, table=kind))
    return "\nUNION ALL ".join(parts)


Arm = tuple[tuple[int, str], tuple[str, ...]]  # (tier, table or phone column), parameters


def _arms(query: Query) -> list[Arm]:
    """The arms to stream for ``query``, best tier first."""
    arms: list[Arm] = []
    last_names = "customer_pairs" if query.paired else "customer_names"
    for tier, table, exprs in (
        (_LAST_NAME, last_names, (query.exact_last,)),
        (_LAST_NAME_PREFIX, last_names, query.last_prefixes),
        (_NAME, "customer_names", (query.names,)),
    ):
        arms += [((tier, table), (expr,)) for expr in exprs if expr is not None]
    if query.broad_words is not None:  # enough whole-word hits fill the page at once
        arms.append(((_OTHER, "customer_fts"), (query.broad_words,)))
    if query.phone_prefix is not None:
        prefix = query.phone_prefix
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        for column in ("mobile", "phone"):
            arms.append(((_OTHER, column), (prefix, upper)))
    arms.append(((_OTHER, "customer_fts"), (query.broad,)))
    if query.phonetic is not None:
        arms.append(((_PHONETIC, "customer_names"), (query.phonetic,)))
    return arms


_EXACT_SQL = (
    f"SELECT c.rowid{_ROW_COLUMNS} FROM ("
    " SELECT id AS cid FROM customers WHERE customer_no = ?1"
    " UNION ALL SELECT customer_id FROM customer_cards WHERE card_no = ?1"
    " UNION ALL SELECT id FROM customers WHERE email_key = ?2) x"
    " LEFT JOIN customer_redirects r ON r.loser = x.cid"
    f" JOIN customers c ON c.id = coalesce(r.survivor, x.cid) WHERE {_LIVE}"
)


def _exact_numbers(db, text: str) -> list[tuple]:
    """Customers whose customer number, card number or e-mail is exactly ``text`` (B-tree).

    An old receipt or card may name a customer merged away: the redirect leads to the survivor.
    """
    text = text.strip()
    if _NUMBER_RE.match(text):
        return db.conn.execute(_EXACT_SQL, [text, None]).fetchall()
    if "@" in text and " " not in text:
        return db.conn.execute(_EXACT_SQL, [None, text.lower()]).fetchall()
    return []


@lru_cache(maxsize=65536)
def _sort_key(text: str | None) -> tuple[str, ...]:
    return tuple(fold(text or ""))


_RANK = {match: i for i, match in enumerate(MATCHES)}


def _listed(hit: Hit) -> tuple:
    """The list's order: tier by tier, alphabetically inside a tier."""
    return (_RANK[hit.match], _sort_key(hit.last_name or hit.company), _sort_key(hit.first_name),
            hit.customer_no)  # fmt: skip


@lru_cache(maxsize=65536)
def _name_words(value: str | None) -> tuple[str, ...]:
    return tuple(_words(value))


def _classify(person: tuple, tokens: tuple[str, ...]) -> int:
    """The name tier of a name match whose ``person`` is (first name, last name, company):
    the name tiers' SQL, replayed on it."""
    first_name, last_name, company = person
    last = _name_words(last_name)
    names = last + _name_words(first_name) + _name_words(company)
    if not all(any(w.startswith(t) for w in names) for t in tokens):
        return _OTHER
    if any(t in last for t in tokens):
        return _LAST_NAME
    if any(w.startswith(t) for t in tokens for w in last):
        return _LAST_NAME_PREFIX
    return _NAME


def _read(db, arms: list[Arm], seen: set[int], want: int, rows_too: bool = True) -> list[tuple]:
    """Up to ``want`` rows (tier, rowid, *columns) of ``arms`` whose rowid is not in ``seen``.

    The arms stream in order and reading stops once ``want`` rows are in: later, broader arms
    never run when the early ones fill the page.
    """
    rows: list[tuple] = []
    if not arms or want <= 0:
        return rows
    sql = _sql(tuple(arm for arm, _params in arms), rows_too)
    cursor = db.conn.execute(sql, [p for _arm, params in arms for p in params])
    try:
        for row in cursor:
            if row[1] not in seen:
                seen.add(row[1])
                rows.append(row)
                if len(rows) >= want:
                    break
    finally:
        cursor.close()  # ends the read at once, also when the page filled early
    return rows


def _load(db, rowids: list[int]) -> list[tuple]:
    """The listed rows (rowid, *columns) of live customers, in the order of ``rowids``.

    One query per 500 ids: an export searches with the whole shop as its page, and SQLite
    builds by default take at most 32,766 parameters.
    """
    loaded: dict[int, tuple] = {}
    for start in range(0, len(rowids), 500):
        chunk = rowids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in db.conn.execute(
            f"SELECT c.rowid{_ROW_COLUMNS} FROM customers c WHERE c.rowid IN ({marks}) AND {_LIVE}",
            chunk,
        ):
            loaded[row[0]] = row
    return [loaded[r] for r in rowids if r in loaded]


def _probed(
    db, tokens: tuple[str, ...], arms: list[Arm], probe: int, seen: set[int], limit: int
) -> list[tuple]:
    """Rows of ``arms`` for a text of several words, whose name tiers each repeat the words'
    AND (the costly part): the arm of tier ``probe``, which holds every match of the tiers
    before it, is read first from the index alone. When it holds no more than the rest of the
    page, that one read has them all, tiered here, and the later arms fill the page. Otherwise
    the arms stream in tier order, as ever."""
    if len(seen) >= limit:
        return []
    first = [arm for arm in arms if arm[0][0] == probe]
    later = [arm for arm in arms if arm[0][0] > probe]
    found = _read(db, first, seen, limit - len(seen) + 1, rows_too=False)
    if len(seen) > limit:  # more than a page: the tiers decide which rows show
        seen.difference_update(f[1] for f in found)
        return _read(db, arms, seen, limit - len(seen))
    rows = [(_classify(r[3:6], tokens), *r) for r in _load(db, [f[1] for f in found])]
    return rows + _read(db, later, seen, limit - len(seen))


def _likely_sparse(tokens: tuple[str, ...]) -> bool:
    """Whether a text of several words probably matches no more than a page of names (a whole
    last name and an initial: "drehmüller w", half of them at 1M customers). Short words
    together ("boc no", "kli pat") match hundreds: 96 % overflowed the probe, which then only
    added a read to the tiers."""
    return max(map(len, tokens)) >= _SPARSE_WORD_LEN


def run(db, text: str, limit: int = 20, candidates: int | None = None) -> list[Hit]:
    """Search customers as the cashier types; at most ``limit`` hits, best tier first.

    A text streams the tiers as one compound SELECT that stops when the page is full; texts
    of several words probe a broader tier first (see _probed).
    ``candidates`` is accepted for older callers and ignored.
    """
    del candidates
    if limit <= 0:
        return []
    hits: list[Hit] = []
    seen: set[int] = set()
    for rowid, *values in _exact_numbers(db, text):
        if rowid not in seen and len(seen) < limit:
            seen.add(rowid)
            hits.append(Hit(*values, match="exact"))
    query = build_query(text)
    if query is not None and not (seen and len(text.strip()) >= SCAN_MIN_LEN):
        arms = _arms(query)
        if query.paired:
            # the last-name tiers are whole-term reads; below them, each tier of several words
            # repeats the words' AND: the broad arm, a superset, is probed for them all
            head = [arm for arm in arms if arm[0][0] <= _LAST_NAME_PREFIX]
            rows = _read(db, head, seen, limit - len(seen))
            tail = [arm for arm in arms if arm[0][0] > _LAST_NAME_PREFIX]
            rows += _probed(db, query.tokens, tail, _OTHER, seen, limit)
        elif query.names is not None and len(query.tokens) > 1 and _likely_sparse(query.tokens):
            # the name arm holds every match of the tiers above it
            rows = _probed(db, query.tokens, arms, _NAME, seen, limit)
        else:
            rows = _read(db, arms, seen, limit - len(seen))
        make = Hit._make
        hits += [make((*row[2:], row[0] == _PHONETIC, MATCHES[row[0]])) for row in rows]
    hits.sort(key=_listed)
    return hits
