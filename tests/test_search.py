"""Customer search as the cashier types it, on real SQLite files."""

from __future__ import annotations

import random
import time

import pytest

from kiosk.engine import customers, events, search
from kiosk.engine.store import Store
from kiosk.sample_data import generate


def add(store, first, last, **fields):
    return customers.create(store, {"first_name": first, "last_name": last, **fields}, force=True)


def names(hits):
    return [h.display_name for h in hits]


@pytest.fixture
def shop(file_store):
    s = file_store
    people = {
        "thomas": add(s, "Thomas", "Müller", postcode="50667", city="Köln",
                      mobile="0171 1234567", email="thomas.mueller@web.de"),
        "mueller": add(s, "Petra", "Mueller", postcode="50668", city="Köln"),
        "anna": add(s, "Anna", "Meier", postcode="53111", city="Bonn", phone="0228 987654"),
        "jan": add(s, "Jan", "Mayer"),
        "eva": add(s, "Eva", "Maier"),
        "otto": add(s, "Otto", "Meyer"),
        "karl": add(s, "Karl", "Meierhofer"),
        "schulz": add(s, "Meiera", "Schulz"),
        "ayse": add(s, "Ayşe", "Yılmaz", email="ayse.yilmaz@gmx.de"),
        "lena": add(s, "Anna-Lena", "Schmidt-Hoffmann", postcode="51063", city="Köln"),
    }  # fmt: skip
    customers.assign_card(s, people["thomas"]["id"], "2900000000015")
    return s, people


def test_name_prefixes_in_any_order(shop):
    """GIVEN Thomas Müller WHEN the cashier types parts of both names in any order THEN he is found."""
    store, p = shop
    for text in ("mül tho", "tho mül", "MÜL THO", "Müller Thomas", "thomas m", "mu th"):
        assert p["thomas"]["id"] in [h.id for h in customers.find(store, text)], text


def test_umlaut_spellings_find_each_other(shop):
    store, p = shop
    for text in ("Müller", "Mueller", "muller", "MÜLLER", "mül"):
        ids = [h.id for h in customers.find(store, text)]
        assert p["thomas"]["id"] in ids, text
    # written with "ue" in the record: found by the umlaut and the ue spelling
    for text in ("Müller", "mueller"):
        assert p["mueller"]["id"] in [h.id for h in customers.find(store, text)], text


def test_letters_without_decomposition_fold_to_ascii(shop):
    store, p = shop
    for text in ("yilmaz", "Yılmaz", "ayse yil", "ayşe"):
        assert [h.id for h in customers.find(store, text)][:1] == [p["ayse"]["id"]], text


def test_double_names_match_each_part(shop):
    store, p = shop
    for text in ("hoffmann", "schmidt-ho", "lena schm", "anna hoff"):
        assert p["lena"]["id"] in [h.id for h in customers.find(store, text)], text


def test_phonetic_matches_come_after_exact_ones(shop):
    """GIVEN Meier, Meierhofer, Mayer, Maier, Meyer WHEN "Meier" is typed THEN the exact last name
    comes first, prefix matches next, sound-alikes last and marked fuzzy."""
    store, p = shop
    hits = customers.find(store, "Meier")
    assert hits[0].id == p["anna"]["id"] and hits[0].match == "last_name"
    assert hits[1].id == p["karl"]["id"] and hits[1].match == "last_name_prefix"
    assert hits[2].id == p["schulz"]["id"] and hits[2].match == "name"
    fuzzy = hits[3:]
    assert {h.id for h in fuzzy} == {p["jan"]["id"], p["eva"]["id"], p["otto"]["id"]}
    assert all(h.fuzzy and h.match == "phonetic" for h in fuzzy)
    assert not any(h.fuzzy for h in hits[:3])
    # and the other way round: Mayer finds Meier as a sound-alike
    mayer = customers.find(store, "mayer")
    assert mayer[0].id == p["jan"]["id"] and not mayer[0].fuzzy
    assert p["anna"]["id"] in [h.id for h in mayer if h.fuzzy]


@pytest.mark.parametrize("limit", [3, 20])
def test_ranking_is_the_same_when_the_page_overflows(file_store, limit):
    """GIVEN more matches than fit on the page WHEN "mai" is typed THEN exact last names come
    first, then last names starting with it, then first names, whatever the page size."""
    s = file_store
    mai = add(s, "Peter", "Mai")
    for i in range(4):
        add(s, f"Zora{i}", "Maier")
    maik = add(s, "Maik", "Albers")
    add(s, "Paul", "Schröder", email="mai.paul@web.de")
    hits = search.run(s.db, "mai", limit=limit)
    assert len(hits) == min(limit, 7)
    assert hits[0].id == mai["id"] and hits[0].match == "last_name"
    assert [h.match for h in hits[1:3]] == ["last_name_prefix", "last_name_prefix"]
    if limit == 20:
        assert [h.match for h in hits] == (
            ["last_name"] + ["last_name_prefix"] * 4 + ["name", "other"]
        )
        assert hits[5].id == maik["id"]
        assert names(hits[1:5]) == ["Zora0 Maier", "Zora1 Maier", "Zora2 Maier", "Zora3 Maier"]


@pytest.mark.parametrize("limit", [3, 20])
@pytest.mark.parametrize("text", ["müller th", "th müller", "mül th", "th mül"])
def test_several_words_rank_last_names_first_in_either_order(file_store, text, limit):
    """GIVEN Müllers, a Thorsten, a Müller GmbH and a Müller e-mail WHEN a last name and a first
    name's start are typed, in either order, THEN last names come first, whichever word they
    start, whether the text is probed for being sparse (a long word, a page of 20) or the tiers
    fill a page that overflows (3)."""
    s = file_store
    thea = add(s, "Thea", "Müller")
    thomas = add(s, "Thomas", "Müllerschön")
    thorsten = add(s, "Müller", "Thorsten")  # entered the wrong way round: still a last name
    add(s, "Thilo", "Berger", company="Müller GmbH")
    add(s, "Theo", "Schmidt", email="mueller.shop@web.de")
    add(s, "Anna", "Müller")  # no "th" anywhere: never listed
    hits = search.run(s.db, text, limit=limit)
    whole = "müller" in text
    tiers = (["last_name"] if whole else ["last_name_prefix"]) + ["last_name_prefix"] * 2
    assert [h.match for h in hits] == (tiers + ["name", "other"])[:limit]
    if limit == 20:
        assert {h.id for h in hits[:3]} == {thea["id"], thomas["id"], thorsten["id"]}
        assert names(hits[3:]) == ["Thilo Berger", "Theo Schmidt"]
    elif whole:
        assert hits[0].id == thea["id"]


def test_name_pairs_of_a_customer():
    """The pair terms: every last word's starts (up to 4 letters) with every name word's starts,
    and a short last word whole ("vogt00em")."""
    doc = search.document({"first_name": "Emil", "last_name": "Vogt"}, [])
    terms = doc.pairs.split()
    assert {"v0e", "vogt0emil", "vo0vog", "vogt00em", "vogt00emil", "vogt00v"} <= set(terms)
    assert len(terms) == len(set(terms)) == 4 * 4 + 4 * 4 + 4 + 4  # (emil, vogt) × k, j; whole
    long = search.document({"first_name": "Ina", "last_name": "Drehmüller"}, []).pairs.split()
    assert "dreh0in" in long and "dreh0ina" in long and not any("00" in t for t in long)


def test_two_short_words_match_the_name_tiers_of_every_customer(file_store):
    """GIVEN 300 generated customers WHEN two short words are typed (pair terms) THEN the name
    tiers list exactly the customers the tiers' rule gives, each in its tier."""
    s = file_store
    people = [p.fields for p in generate(300, seed=7)]
    customers.create_many(s, people, source="import")
    rows = s.db.execute("SELECT id, first_name, last_name, company FROM customers").fetchall()
    rnd = random.Random(3)
    texts = set()
    for first, last in [(p["first_name"], p["last_name"]) for p in people[:60]]:
        a, b = last[: rnd.randint(1, 4)], first[: rnd.randint(1, 4)]
        texts |= {f"{a} {b}", f"{b} {a}", f"{last.split('-')[0][:4]} {b}"}
    texts |= {"ma an", "sch m", "a a", "mü th", "ko ko"}
    checked = 0
    for text in sorted(texts):
        query = search.build_query(text)
        if query is None or not query.paired:
            continue
        tokens = query.tokens
        expected = {(cid, search.MATCHES[tier]) for cid, *person in rows
                    if (tier := search._classify(tuple(person), tokens)) < search._OTHER}  # fmt: skip
        found = {(h.id, h.match) for h in search.run(s.db, text, limit=1000)
                 if h.match in ("last_name", "last_name_prefix", "name")}  # fmt: skip
        assert found == expected, text
        checked += len(expected)
    assert checked > 300  # the texts matched many customers, in every name tier


def test_postcode_and_city(shop):
    store, p = shop
    assert {h.id for h in customers.find(store, "5066")} == {p["thomas"]["id"], p["mueller"]["id"]}
    assert [h.id for h in customers.find(store, "50667")] == [p["thomas"]["id"]]
    assert {h.id for h in customers.find(store, "köln")} == {
        p["thomas"]["id"], p["mueller"]["id"], p["lena"]["id"]
    }
    assert [h.id for h in customers.find(store, "müller 50668")] == [p["mueller"]["id"]]


def test_a_word_most_customers_share_fills_the_page_with_whole_word_matches(file_store):
    """GIVEN a shop where most customers live in Hamburg and a few in "Hamburgerhof" WHEN
    "hamburg" (longer than the prefix indexes) is typed THEN the page fills with whole-word hits
    (no merge of every "hamburg…" term); a longer prefix that is no whole word still finds the
    others."""
    s = file_store
    for i in range(25):
        add(s, f"Kunde{i}", "Adler", city="Hamburg")
    hof = {add(s, f"Gast{i}", "Berger", city="Hamburgerhof")["id"] for i in range(3)}
    query = search.build_query("hamburg")
    assert query.broad_words == '"hamburg"' and search.build_query("hambur").broad_words is None
    hits = search.run(s.db, "hamburg", limit=20)
    assert len(hits) == 20 and not {h.id for h in hits} & hof
    assert {h.id for h in search.run(s.db, "hamburge", limit=20)} == hof
    assert {h.id for h in search.run(s.db, "hamburgerhof berger", limit=20)} == hof


def test_a_long_phone_prefix_fills_the_page_from_the_number_index(file_store):
    """GIVEN more customers with a Köln number (0221 …) than fit on the page WHEN the area code
    is typed in any form THEN the page fills from the phone index; merged customers stay out."""
    s = file_store
    kept = [add(s, f"Kunde{i}", "Adler", phone=f"0221 550{i:04d}")["id"] for i in range(22)]
    other = add(s, "Bonn", "Berger", phone="0228 5501234")["id"]
    customers.merge(s, kept[0], kept[1])
    for typed in ("0221550", "+49 221550", "0049 221 550", "49221550"):
        assert search.build_query(typed).phone_prefix == "+49221550"
        hits = search.run(s.db, typed, limit=20)
        assert len(hits) == 20 and {h.id for h in hits} <= set(kept) - {kept[1]}, typed
    assert [h.id for h in search.run(s.db, "0228 550", limit=20)] == [other]
    assert search.build_query("022155").phone_prefix is None  # short: the prefix index serves it


@pytest.mark.parametrize(
    "typed",
    ["0171", "01711234567", "0171 1234567", "0171 123 45 67", "+49 171 1234567",
     "+491711234567", "0049 171 1234567", "49171123", "(0171) 12345"],
)  # fmt: skip
def test_phone_as_typed(shop, typed):
    store, p = shop
    assert [h.id for h in customers.find(store, typed)] == [p["thomas"]["id"]]


def test_landline(shop):
    store, p = shop
    assert [h.id for h in customers.find(store, "0228 98")] == [p["anna"]["id"]]


@pytest.mark.parametrize(
    "typed", ["thomas.mu", "thomas.mueller@", "mueller@web", "thomas.mueller@web.d",
              "thomas.mueller@web.de"],
)  # fmt: skip
def test_email_fragments(shop, typed):
    store, p = shop
    assert [h.id for h in customers.find(store, typed)][0] == p["thomas"]["id"]


def test_top_level_domains_are_not_indexed(shop):
    """Every other address ends in .de: typing "de" must not list the whole shop."""
    store, _p = shop
    assert customers.find(store, "de") == []


def test_full_email_is_an_exact_hit(shop):
    store, p = shop
    hits = customers.find(store, "Thomas.Mueller@web.de")
    assert hits[0].id == p["thomas"]["id"] and hits[0].match == "exact"


def test_customer_number_exact_and_prefix(shop):
    store, p = shop
    number = p["anna"]["customer_no"]
    hits = customers.find(store, number)
    assert [h.id for h in hits] == [p["anna"]["id"]] and hits[0].match == "exact"
    assert p["anna"]["id"] in [h.id for h in customers.find(store, number[:-1])]


def test_scanned_card_is_an_index_lookup_not_a_prefix_scan(shop):
    """GIVEN a card WHEN its full number is scanned THEN the owner is found by B-tree look-ups
    only: no FTS5 query runs and every statement searches an index."""
    store, p = shop
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        hits = customers.find(store, "2900000000015")
    finally:
        store.db.conn.set_trace_callback(None)
    assert [h.id for h in hits] == [p["thomas"]["id"]] and hits[0].match == "exact"
    assert statements and not any("MATCH" in sql for sql in statements)
    for sql in statements:
        plan = store.db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        details = " ".join(row[-1] for row in plan)
        assert "SCAN" not in details, (sql, details)
    # typed partially, the card is found through the index as well
    assert [h.id for h in customers.find(store, "29000000")] == [p["thomas"]["id"]]


def test_card_of_a_merged_customer_leads_to_the_survivor(shop):
    store, p = shop
    # GIVEN the card points to a customer that was merged away (events arrived in that order)
    customers.merge(store, p["anna"]["id"], p["thomas"]["id"])
    hits = customers.find(store, "2900000000015")
    assert [h.id for h in hits] == [p["anna"]["id"]]
    assert [h.id for h in customers.find(store, p["thomas"]["customer_no"])] == [p["anna"]["id"]]


def test_merged_and_erased_customers_never_appear(shop):
    store, p = shop
    customers.merge(store, p["anna"]["id"], p["eva"]["id"])
    customers.erase(store, p["thomas"]["id"])
    for text in ("eva", "maier", "meier", "mül tho", "0171", "thomas.mu", "2900000000015",
                 p["thomas"]["customer_no"], "50667", "thomas.mueller@web.de"):  # fmt: skip
        ids = {h.id for h in customers.find(store, text)}
        assert not ids & {p["eva"]["id"], p["thomas"]["id"]}, text
        assert ids <= {h.id for h in search.run(store.db, text, limit=1000)}
    # the survivor took the merged customer's empty fields and is found by them
    assert p["anna"]["id"] in [h.id for h in customers.find(store, "meier")]


def _pair_counts(db) -> dict[str, int]:
    """customer_pairs as FTS5 holds it: how many customers each term has."""
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.pair_vocab"
               " USING fts5vocab(main, customer_pairs, 'row')")  # fmt: skip
    return dict(db.execute("SELECT term, doc FROM pair_vocab").fetchall())


def _expected_pair_counts(store) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in store.db.query(
        "SELECT * FROM customers WHERE merged_into IS NULL AND erased_at IS NULL"
    ):
        for term in search.document(row, []).pairs.split():
            counts[term] = counts.get(term, 0) + 1
    return counts


def test_name_pairs_follow_edits_merges_and_erasure(shop):
    """GIVEN the contentless pairs table WHEN names change, customers are merged and erased
    THEN it holds exactly the pairs of the live customers: no stale term, none counted twice."""
    store, p = shop
    assert _pair_counts(store.db) == _expected_pair_counts(store)
    customers.update(store, p["thomas"]["id"], {"last_name": "Schulze-Vogt"})
    customers.update(store, p["anna"]["id"], {"first_name": "Annika"})
    customers.update(store, p["jan"]["id"], {"city": "Bonn"})  # names unchanged
    customers.merge(store, p["otto"]["id"], p["eva"]["id"])
    customers.erase(store, p["karl"]["id"])
    assert _pair_counts(store.db) == _expected_pair_counts(store)
    assert "mu0th" not in _pair_counts(store.db) and "vogt00th" in _pair_counts(store.db)
    assert [h.id for h in customers.find(store, "vogt th")] == [p["thomas"]["id"]]
    # Thomas' e-mail still says mueller: found in the "any field" tier, not as a last name
    assert [h.match for h in customers.find(store, "mü th")] == ["other"]
    assert customers.find(store, "kar me") == []
    with store.transaction():
        search.rebuild(store.db)
    assert _pair_counts(store.db) == _expected_pair_counts(store)
    store.db.execute("INSERT INTO customer_pairs (customer_pairs) VALUES ('integrity-check')")


def test_updates_reindex(shop):
    store, p = shop
    customers.update(store, p["otto"]["id"], {"last_name": "Krüger", "postcode": "50999"})
    assert p["otto"]["id"] not in [h.id for h in customers.find(store, "meyer")]
    assert [h.id for h in customers.find(store, "krueger ot")] == [p["otto"]["id"]]
    assert [h.id for h in customers.find(store, "50999")] == [p["otto"]["id"]]


def test_events_from_another_device_are_searchable(shop, tmp_path, identity):
    store, p = shop
    replica = Store(tmp_path / "replica.db", identity.__class__("teststore", "till-2", 2))
    try:
        for ev in reversed(events.history(store, limit=1000)):
            events.apply(replica, ev)
        assert [h.id for h in customers.find(replica, "mül tho")] == [p["thomas"]["id"]]
        assert [h.id for h in customers.find(replica, "2900000000015")] == [p["thomas"]["id"]]
    finally:
        replica.close()


def test_limit_and_no_duplicates(shop):
    store, _p = shop
    hits = customers.find(store, "m", limit=4)
    assert len(hits) == 4 and len({h.id for h in hits}) == 4
    assert customers.find(store, "   ") == [] and customers.find(store, "?!") == []
    assert search.run(store.db, "meier", limit=0) == []


def test_export_selection_gets_every_match(shop):
    """customer_export asks for all matches of a query with a large limit."""
    store, p = shop
    ids = {h.id for h in search.run(store.db, "köln", limit=1000, candidates=1000)}
    assert ids == {p["thomas"]["id"], p["mueller"]["id"], p["lena"]["id"]}


def test_migration_rebuilds_an_index_of_the_first_layout(file_store, identity):
    """GIVEN a database whose index has the first layout WHEN the store opens THEN the
    search migration replaces it and indexes the existing customers."""
    s = file_store
    thomas = add(s, "Thomas", "Müller", postcode="50667")
    db = s.db
    with s.transaction():
        db.execute("DROP TABLE customer_fts")
        db.execute("DROP TABLE customer_names")
        db.execute(search.FTS_SCHEMA)
        db.execute("DELETE FROM _sqlite_migrations WHERE migration_set = 'kiosk.search'")
    path = s.path
    s.close()
    reopened = Store(path, identity)
    try:
        assert [h.id for h in customers.find(reopened, "mül tho")] == [thomas["id"]]
        assert [h.id for h in customers.find(reopened, "50667")] == [thomas["id"]]
        reopened.migrate()  # applying twice changes nothing
        assert [h.id for h in customers.find(reopened, "mül")] == [thomas["id"]]
    finally:
        reopened.close()
    s.db = reopened.db  # the fixture closes it again


def test_migration_marks_the_last_names_of_an_existing_index(shop, identity):
    """GIVEN an index of the second layout (plain last-name words in the last-name column)
    WHEN the store opens THEN the last names are re-indexed marked, the name tiers rank as
    before, and the other index table is left as it was."""
    store, p = shop
    db = store.db
    before = {t: [(h.id, h.match) for h in customers.find(store, t)]
              for t in ("meier", "mül tho", "anna", "hoffmann", "yilmaz")}  # fmt: skip
    fts = db.execute("SELECT rowid, * FROM customer_fts ORDER BY rowid").fetchall()
    with store.transaction():
        rows = db.execute("SELECT rowid, last, other, phon FROM customer_names").fetchall()
        db.execute("DELETE FROM customer_names")
        for rowid, last, other, phon in rows:  # as m002 wrote them
            plain = [w[1:] for w in last.split()]
            rest = [w for w in other.split() if w not in plain]
            db.execute("INSERT INTO customer_names (rowid, last, other, phon) VALUES (?, ?, ?, ?)",
                       [rowid, " ".join(plain), " ".join(rest), phon])  # fmt: skip
        db.execute("DELETE FROM _sqlite_migrations WHERE migration_set = 'kiosk.search'"
                   " AND name = 'm003_marked_last_names'")  # fmt: skip
    path = store.path
    store.close()
    reopened = Store(path, identity)
    try:
        last = reopened.db.execute(
            "SELECT last FROM customer_names WHERE rowid = ?",
            [reopened.db.execute("SELECT rowid FROM customers WHERE id = ?",
                                 [p["thomas"]["id"]]).fetchone()[0]],
        ).fetchone()[0]  # fmt: skip
        assert last.split() == [search.LAST_MARK + "mueller", search.LAST_MARK + "muller"]
        schema = reopened.db.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'customer_names'").fetchone()[0]  # fmt: skip
        assert "prefix = '1 2 3 4 5 6 7'" in schema  # a marked six-letter prefix is indexed
        after = {t: [(h.id, h.match) for h in customers.find(reopened, t)] for t in before}
        assert after == before
        assert reopened.db.execute(
            "SELECT rowid, * FROM customer_fts ORDER BY rowid").fetchall() == fts  # fmt: skip
    finally:
        reopened.close()
    store.db = reopened.db  # the fixture closes it again


def test_migration_adds_the_name_pairs_to_an_existing_index(shop, identity):
    """GIVEN an index without name pairs (before m004) WHEN the store opens THEN every customer's
    pairs are indexed and two short words rank as before."""
    store, p = shop
    texts = ("mül tho", "tho mül", "mu th", "anna m", "ma an", "ay yi")
    before = {t: [(h.id, h.match) for h in customers.find(store, t)] for t in texts}
    assert before["mül tho"][0] == (p["thomas"]["id"], "last_name_prefix")
    with store.transaction():
        store.db.execute("DROP TABLE customer_pairs")
        store.db.execute("DELETE FROM _sqlite_migrations WHERE migration_set = 'kiosk.search'"
                         " AND name = 'm004_name_pairs'")  # fmt: skip
    path = store.path
    store.close()
    reopened = Store(path, identity)
    try:
        count = reopened.db.execute("SELECT count(*) FROM customer_pairs").fetchone()[0]
        assert count == customers.count(reopened)
        assert {t: [(h.id, h.match) for h in customers.find(reopened, t)] for t in texts} == before
    finally:
        reopened.close()
    store.db = reopened.db  # the fixture closes it again


def test_rebuild_matches_incremental_index(shop):
    store, _p = shop
    queries = ("mül", "meier", "köln", "0171", "5", "anna", "thomas.m", "yil")
    before = {q: [h.id for h in customers.find(store, q)] for q in queries}
    with store.transaction():
        assert search.rebuild(store.db) == customers.count(store)
    assert {q: [h.id for h in customers.find(store, q)] for q in queries} == before


# -- upkeep: the index merged into one segment ------------------------------------------------
def _fragment(store, count=60):
    """Customers created one transaction each, as at a till: every one adds index segments."""
    ids = [add(store, f"Vorname{i}", ["Meier", "Müller", "Schulz"][i % 3],
               postcode=f"5{i:04d}")["id"] for i in range(count)]  # fmt: skip
    for table in search.TABLES:
        assert search.segments(store.db.conn, table) > 4
    return ids


def _results(store):
    return {t: [(h.id, h.match) for h in search.run(store.db, t, limit=20)]
            for t in ("mei", "müller", "vorname1", "vor sch", "5000", "maier")}  # fmt: skip


def test_merge_leaves_one_segment_and_the_same_results(file_store):
    """GIVEN an index written customer by customer WHEN it is merged THEN each table has one
    segment, every search finds the same, and the time of the merge is recorded."""
    _fragment(file_store)
    for batch in range(8):  # and imports: segments of many pages
        customers.create_many(file_store, [
            {"first_name": f"Gast{batch}x{i}", "last_name": f"Adler{i}", "city": "Köln"}
            for i in range(150)])  # fmt: skip
    before = _results(file_store)
    assert search.merge(file_store.db.conn, pages=2) > 1  # several bounded steps
    assert [search.segments(file_store.db.conn, t) for t in search.TABLES] == [1, 1, 1]
    assert _results(file_store) == before
    assert file_store.get_meta(search.MERGED_AT)
    assert not search.merge_step(file_store.db.conn)  # nothing left to do
    # a customer created after the merge is found as before
    late = add(file_store, "Zacharias", "Meier")
    assert late["id"] in [h.id for h in search.run(file_store.db, "zach")]


def test_upkeep_merges_on_the_background_thread_while_searches_go_on(file_store):
    """GIVEN a fragmented index WHEN the store's background thread runs the index upkeep
    THEN it merges in small steps until one segment is left, and searches keep working."""
    ids = _fragment(file_store)
    before = _results(file_store)
    upkeep = search.IndexUpkeep(max_segments=1, pages=4)
    file_store.start_checkpointer(every_s=0.02, upkeep=[upkeep])
    try:
        deadline = time.monotonic() + 20
        while file_store.get_meta(search.MERGED_AT) is None:
            assert time.monotonic() < deadline, "the upkeep never finished"
            assert len(search.run(file_store.db, "vorname", limit=100)) == len(ids)
            time.sleep(0.01)
    finally:
        file_store.stop_checkpointer()
    assert [search.segments(file_store.db.conn, t) for t in search.TABLES] == [1, 1, 1]
    assert _results(file_store) == before and not upkeep.merging


def test_upkeep_merges_at_most_once_per_interval(file_store):
    """GIVEN an index merged a moment ago and fragmented again WHEN the upkeep checks THEN it
    waits for the interval (the merge rewrites the whole index); once due, it merges."""
    conn = file_store.db.conn
    _fragment(file_store)
    search.merge(conn)
    _fragment(file_store)
    fragmented = search.segments(conn, "customer_names")
    waiting = search.IndexUpkeep(max_segments=1, check_every_s=0)
    for _ in range(5):
        waiting(conn)
    assert not waiting.merging and search.segments(conn, "customer_names") == fragmented
    due = search.IndexUpkeep(max_segments=1, check_every_s=0, min_interval_s=0, pages=1024)
    due(conn)
    while due.merging:
        due(conn)
    assert search.segments(conn, "customer_names") == 1
    # below the threshold nothing is merged however old the last merge is
    quiet = search.IndexUpkeep(max_segments=100, check_every_s=0, min_interval_s=0)
    _fragment(file_store, 30)
    count = search.segments(conn, "customer_names")
    quiet(conn)
    assert not quiet.merging and search.segments(conn, "customer_names") == count


def test_a_failing_upkeep_task_is_logged_and_tried_again(file_store, caplog):
    calls = []

    def broken(conn):
        calls.append(conn)
        raise RuntimeError("disk on fire")

    file_store.start_checkpointer(every_s=0.01, upkeep=[broken])
    try:
        deadline = time.monotonic() + 10
        while len(calls) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        file_store.stop_checkpointer()
    assert "upkeep task" in caplog.text and "disk on fire" in caplog.text
