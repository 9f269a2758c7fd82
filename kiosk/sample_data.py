"""Realistic German sample customers, generated deterministically from a seed.

Used by the demo seeding, the search benchmark and the dashboard benchmark. Names follow the
rough frequencies of German telephone books (Müller is ~1 % of people, the top hundred
surnames ~25 %), with the spelling variants cashiers confuse (Meier/Mayer/Maier/Meyer,
Schmidt/Schmitt/Schmid), umlauts, double names, a long tail of rarer and non-German names,
and real postcode/city pairs weighted around the shop's region. Phones are valid German
numbers, e-mails are plausible addresses made from the name. Dependency-free on purpose: the
same seed gives the same customers on every machine and Python version.

    >>> from kiosk.sample_data import generate
    >>> first = next(generate(1, seed=7))
    >>> sorted(first.fields)[:3]
    ['birth_date', 'city', 'country']
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# -- surnames ------------------------------------------------------------------------------------
# Approximate telephone-book counts (thousands) of the most common German surnames.
_COMMON_SURNAMES = """
Müller 256 Schmidt 190 Schneider 115 Fischer 98 Weber 86 Meyer 80 Wagner 79 Becker 75
Schulz 73 Hoffmann 72 Schäfer 60 Koch 55 Bauer 54 Richter 53 Klein 52 Wolf 50 Schröder 49
Neumann 48 Schwarz 47 Zimmermann 46 Braun 44 Krüger 43 Hofmann 43 Hartmann 42 Lange 41
Schmitt 40 Werner 40 Schmitz 40 Krause 39 Meier 39 Lehmann 38 Schmid 37 Schulze 36 Maier 36
Köhler 35 Herrmann 35 König 34 Walter 34 Mayer 34 Huber 33 Kaiser 33 Fuchs 32 Peters 32
Lang 31 Scholz 31 Möller 30 Weiß 30 Jung 30 Hahn 30 Schubert 29 Vogel 29 Friedrich 28
Keller 28 Günther 28 Frank 27 Berger 27 Winkler 26 Roth 26 Beck 26 Lorenz 26 Baumann 26
Franke 25 Albrecht 25 Schuster 24 Simon 24 Ludwig 24 Böhm 24 Winter 24 Kraus 23 Martin 23
Schumacher 23 Krämer 23 Vogt 23 Stein 22 Jäger 22 Otto 22 Sommer 22 Groß 22 Seidel 21
Heinrich 21 Brandt 21 Haas 21 Schreiber 21 Graf 20 Schulte 20 Dietrich 20 Ziegler 20 Kuhn 20
Kühn 20 Pohl 19 Engel 19 Horn 19 Busch 19 Bergmann 19 Thomas 19 Voigt 18 Sauer 18 Arnold 18
Wolff 18 Pfeiffer 18 Mayr 6 Meir 1 Maijer 1 Mueller 3 Muller 1 Moeller 2 Schmied 4 Schmiedt 1
Schmit 1 Meister 9 Kühne 9 Küpper 8 Jansen 12 Janssen 6 Hansen 10 Petersen 9 Claßen 5
Classen 4 Kowalski 6 Nowak 6 Yılmaz 7 Kaya 5 Demir 5 Şahin 4 Çelik 4 Öztürk 3 Nguyen 4
Rossi 2 Russo 2 Popescu 2 Ivanov 2 Papadopoulos 2 Hodžić 1 Wiśniewski 2 Lewandowski 3
"""

# Stems and endings of the long tail: Lindemann, Rosenfeld, Goldbach, Steinhauer, ...
_TAIL_STEMS = (
    "Ahl Alt Bach Baum Berg Birk Blum Bock Brand Brück Buch Dreh Eich Eisen Engel Fass Feld "
    "Fried Frie Glas Gold Grün Hagen Hart Heil Hein Herz Hoh Holz Horst Huf Kamp Kirch Klee "
    "Kling Knoll Kolb Korn Kreutz Kuhl Lamp Lind Linden Löw Mahl Mohr Mühl Neu Nord Ober Pracht "
    "Rein Ring Rosen Rott Sand Schön Schwan Seel Sieg Sonn Spiel Stahl Stark Stein Stern Stock "
    "Straub Tann Thal Ulm Vieh Wald Wallen Wein Weiss Wend Wies Wild Winkel Witt Zell Zimmer"
).split()
_TAIL_ENDINGS = (
    "mann er el inger berg hoff ke ler lein bach feld meier huber brink kamp haus horst "
    "städt ner schmidt müller hauer hardt wald ecker"
).split()
_TAIL_LINKS = ("", "", "", "e", "en", "s", "el")

# -- first names (weights across birth cohorts 1935-2008) --------------------------------------------
_MALE = """
Peter 30 Michael 35 Thomas 33 Andreas 30 Wolfgang 22 Klaus 20 Jürgen 20 Stefan 22 Christian 22
Uwe 15 Frank 17 Hans 15 Bernd 14 Markus 17 Matthias 16 Martin 17 Alexander 15 Daniel 16 Jan 14
Tobias 12 Sebastian 13 Florian 11 Dirk 10 Torsten 9 Ralf 12 Rainer 11 Manfred 13 Werner 12
Günter 11 Horst 11 Dieter 12 Helmut 11 Gerhard 11 Heinz 10 Karl 10 Walter 8 Jörg 11 Björn 6
Sven 9 Kai 7 Lukas 9 Leon 7 Felix 8 Maximilian 9 Paul 8 Jonas 8 Niklas 7 Tim 8 Finn 5 Ben 5
Elias 5 Noah 4 Julian 7 David 6 Dennis 7 Patrick 8 Marco 6 Oliver 9 Holger 8 Carsten 7 Detlef 6
Norbert 6 Rolf 7 Herbert 7 Kurt 5 Ernst 4 Friedrich 5 Georg 5 Johannes 7 Philipp 7 Simon 6
Mehmet 4 Ali 3 Mustafa 3 Hans-Peter 4 Karl-Heinz 5 Hans-Jürgen 3 Jens 9 Lars 6 Nils 6
Marcel 6 René 4 André 5 Ingo 5 Volker 7 Joachim 7 Ulrich 8 Reinhard 6 Hermann 5 Otto 3
Erwin 3 Willi 3 Emil 3 Anton 3 Theo 3 Moritz 5 Till 3 Fabian 6 Dominik 5 Kevin 5 Mario 4
Robert 5 Benjamin 6 Christoph 7 Rüdiger 3 Thorsten 4 Mathias 3 Jannik 3 Luca 3 Piotr 2
"""
_FEMALE = """
Maria 25 Ursula 18 Monika 18 Petra 18 Elisabeth 14 Sabine 20 Renate 13 Helga 13 Karin 15
Brigitte 13 Andrea 19 Ingrid 11 Susanne 16 Gabriele 13 Birgit 12 Claudia 15 Anna 14 Julia 14
Katharina 11 Lena 9 Sophie 8 Sophia 6 Laura 9 Lea 6 Hannah 7 Emma 7 Mia 6 Lisa 9 Sarah 9
Anja 11 Nicole 13 Stefanie 12 Christina 10 Melanie 10 Sandra 13 Tanja 9 Kerstin 10 Silke 8
Heike 11 Martina 12 Angelika 10 Christa 9 Gisela 9 Erika 8 Hildegard 6 Gertrud 6 Irmgard 5
Inge 6 Marianne 7 Barbara 10 Doris 7 Jutta 8 Cornelia 7 Daniela 10 Manuela 8 Simone 9
Jessica 7 Jennifer 7 Vanessa 5 Jana 7 Franziska 6 Johanna 6 Marie 8 Charlotte 5 Clara 4
Klara 3 Greta 3 Emilia 5 Paula 5 Leonie 6 Annika 5 Jasmin 5 Nadine 8 Katrin 10 Kathrin 5
Katja 8 Anke 8 Bärbel 5 Käthe 2 Anna-Lena 3 Marie-Luise 3 Ann-Kathrin 3 Fatma 3 Ayşe 3
Elif 2 Zeynep 2 Natalia 3 Olga 3 Agnieszka 2 Jördis 1
"""

# -- places: real postcodes of each city, with its dialling code ---------------------------------------
_CITIES: dict[str, tuple[str, str]] = {
    # city: (postcodes, area code)
    "Köln": (
        "50667 50668 50670 50672 50674 50676 50677 50678 50679 50733 50735 50737 50739 50765 "
        "50767 50769 50823 50825 50827 50829 50858 50859 50931 50933 50935 50937 50939 50968 "
        "50969 50996 50997 50999 51061 51063 51065 51067 51069 51103 51105 51107 51109 51143 "
        "51145 51147 51149", "0221"),
    "Bonn": ("53111 53113 53115 53117 53119 53121 53123 53125 53127 53129 53173 53175 53177 "
             "53179 53225 53227 53229", "0228"),
    "Leverkusen": ("51371 51373 51375 51377 51379 51381", "0214"),
    "Bergisch Gladbach": ("51427 51429 51465 51467 51469", "02202"),
    "Hürth": ("50354", "02233"),
    "Frechen": ("50226", "02234"),
    "Pulheim": ("50259", "02238"),
    "Brühl": ("50321", "02232"),
    "Wesseling": ("50389", "02236"),
    "Kerpen": ("50169 50170 50171", "02237"),
    "Bergheim": ("50126 50127 50129", "02271"),
    "Troisdorf": ("53840 53842 53844", "02241"),
    "Siegburg": ("53721", "02241"),
    "Dormagen": ("41539 41540 41541 41542", "02133"),
    "Düsseldorf": (
        "40210 40211 40212 40213 40215 40217 40219 40221 40223 40225 40227 40229 40231 40233 "
        "40235 40237 40239 40468 40470 40472 40474 40476 40477 40479 40489 40545 40547 40549 "
        "40589 40591 40593 40595 40597 40599 40625 40627 40629", "0211"),
    "Berlin": (
        "10115 10117 10119 10178 10179 10243 10245 10247 10249 10405 10407 10409 10435 10437 "
        "10439 10551 10553 10555 10557 10585 10587 10589 10623 10625 10627 10629 10707 10709 "
        "10711 10713 10715 10717 10719 10777 10779 10781 10783 10785 10787 10789 10823 10825 "
        "10827 10829 10961 10963 10965 10967 10969 10997 10999 12043 12045 12047 12049 12051 "
        "12053 12055 12057 12059 13347 13349 13351 13353 13355 13357 13359", "030"),
    "Hamburg": ("20095 20097 20099 20144 20146 20148 20149 20249 20251 20253 20255 20257 20259 "
                "20354 20355 20357 20359 22765 22767 22769", "040"),
    "München": (
        "80331 80333 80335 80336 80337 80339 80469 80538 80539 80634 80636 80637 80638 80639 "
        "80796 80797 80798 80799 80801 80802 80803 80804 80805 80807 80809 81369 81371 81373 "
        "81375 81377 81379 81541 81543 81545 81547 81549 81667 81669 81671 81673 81675 81677 "
        "81679", "089"),
    "Frankfurt am Main": (
        "60306 60308 60310 60311 60313 60314 60316 60318 60320 60322 60323 60325 60326 60327 "
        "60329 60385 60386 60388 60389 60431 60433 60435 60437 60438 60439 60486 60487 60488 "
        "60489 60528 60529 60549 60594 60596 60598 60599", "069"),
    "Stuttgart": ("70173 70174 70176 70178 70180 70182 70184 70186 70188 70190 70191 70192 "
                  "70193 70195 70197 70199", "0711"),
    "Dortmund": ("44135 44137 44139 44141 44143 44145 44147", "0231"),
    "Essen": ("45127 45128 45130 45131 45133 45136 45138 45139 45141 45143 45144 45145 45147",
              "0201"),
    "Leipzig": ("04103 04105 04107 04109", "0341"),
    "Dresden": ("01067 01069 01097 01099", "0351"),
    "Hannover": ("30159 30161 30163 30165 30167 30169 30171 30173 30175 30177 30179", "0511"),
    "Nürnberg": ("90402 90403 90408 90409 90411 90419 90429 90431 90439 90441 90443 90449 "
                 "90451 90453 90455 90459 90461 90469 90471 90473 90478 90480 90482 90489 90491",
                 "0911"),
    "Bremen": ("28195 28199 28201 28203 28205 28207 28209 28211 28213 28215 28217 28219", "0421"),
    "Aachen": ("52062 52064 52066 52068 52070 52072 52074", "0241"),
    "Münster": ("48143 48145 48147 48149 48151 48153 48155 48157 48159 48161 48163 48165 48167",
                "0251"),
    "Mönchengladbach": ("41061 41063 41065 41066 41068 41069", "02161"),
    "Wuppertal": ("42103 42105 42107 42109 42111 42113 42115 42117 42119", "0202"),
    "Duisburg": ("47051 47053 47055 47057 47058 47059", "0203"),
    "Bochum": ("44787 44789 44791 44793 44795 44797 44799 44801 44803 44805 44807 44809", "0234"),
    "Freiburg im Breisgau": ("79098 79100 79102 79104 79106 79108 79110 79111 79112 79114 "
                             "79115 79117", "0761"),
    "Mainz": ("55116 55118 55120 55122 55124 55126 55127 55128 55129 55130 55131", "06131"),
    "Kiel": ("24103 24105 24106 24107 24109 24111 24113 24114 24116 24118 24143 24145 24146 "
             "24147 24148 24149", "0431"),
    "Saarbrücken": ("66111 66113 66115 66117 66119 66121 66123 66125 66126 66127 66128 66129 "
                    "66130 66131 66132 66133", "0681"),
    "Würzburg": ("97070 97072 97074 97076 97078 97080 97082 97084", "0931"),
    "Regensburg": ("93047 93049 93051 93053 93055 93057 93059", "0941"),
    "Augsburg": ("86150 86152 86153 86154 86156 86157 86159 86161 86163 86165 86167 86169 "
                 "86179 86199", "0821"),
    "Koblenz": ("56068 56070 56072 56073 56075 56076 56077", "0261"),
    "Trier": ("54290 54292 54293 54294 54295 54296", "0651"),
    "Erfurt": ("99084 99085 99086 99087 99089 99091 99092 99094 99096 99097 99098 99099", "0361"),
    "Rostock": ("18055 18057 18059 18069 18106 18107 18109 18119 18146 18147", "0381"),
    "Göttingen": ("37073 37075 37077 37079 37081 37083 37085", "0551"),
    "Heidelberg": ("69115 69117 69118 69120 69121 69123 69124 69126", "06221"),
    "Lübeck": ("23552 23554 23556 23558 23560 23562 23564 23566 23568 23569 23570", "0451"),
    "Chemnitz": ("09111 09112 09113 09114 09116 09117 09119 09120 09122 09123 09125 09126 09127 "
                 "09128 09130 09131", "0371"),
}  # fmt: skip

# Where the customers of a shop live: its city, the surrounding towns, then anywhere.
REGIONS: dict[str, dict[str, float]] = {
    "koeln": {
        "Köln": 60, "Leverkusen": 4, "Bergisch Gladbach": 4, "Hürth": 3, "Frechen": 2,
        "Pulheim": 2, "Brühl": 2, "Wesseling": 1.5, "Kerpen": 1.5, "Bergheim": 1.5, "Bonn": 3,
        "Troisdorf": 1.5, "Siegburg": 1, "Dormagen": 1, "Düsseldorf": 2,
    },
}
_ELSEWHERE_SHARE = 0.12  # customers from anywhere else in Germany (tourists, people who moved)

_STREETS = (
    "Hauptstraße Schulstraße Gartenstraße Bahnhofstraße Dorfstraße Bergstraße Birkenweg "
    "Lindenstraße Kirchstraße Waldstraße Ringstraße Schillerstraße Goethestraße Mühlenweg "
    "Amselweg Jahnstraße Wiesenweg Friedrichstraße Am_Sportplatz Rosenstraße Feldstraße "
    "Blumenstraße Buchenweg Eichendorffstraße Beethovenstraße Mozartstraße Lessingstraße "
    "Parkstraße Poststraße Talstraße Uhlandstraße Wilhelmstraße Kastanienallee Ahornweg "
    "Am_Markt Brückenstraße Burgstraße Kölner_Straße Bonner_Straße Neusser_Straße "
    "Aachener_Straße Venloer_Straße Zülpicher_Straße Luxemburger_Straße Severinstraße "
    "Ehrenstraße Brüsseler_Straße Deutzer_Freiheit Am_Hof Hohe_Straße Breite_Straße "
    "Im_Winkel An_der_Mühle Zum_Steinbruch Auf_dem_Hügel Tulpenweg Fliederweg Meisenweg"
)
_STREETS = tuple(s.replace("_", " ") for s in _STREETS.split())

_MAIL_DOMAINS = (
    ("gmail.com", 20), ("web.de", 18), ("gmx.de", 16), ("t-online.de", 10), ("gmx.net", 6),
    ("outlook.de", 4), ("outlook.com", 3), ("hotmail.de", 3), ("yahoo.de", 3), ("icloud.com", 4),
    ("freenet.de", 2), ("posteo.de", 1), ("arcor.de", 1), ("mail.de", 1),
)
_MOBILE_PREFIXES = (  # (prefix, subscriber digits): valid for libphonenumber
    ("0151", 8), ("0152", 8), ("0157", 8), ("0159", 8), ("0160", 7), ("0162", 7), ("0163", 7),
    ("0170", 7), ("0171", 7), ("0172", 7), ("0173", 7), ("0174", 7), ("0175", 7), ("0176", 8),
    ("0177", 7), ("0178", 7), ("0179", 8),
)
_COMPANY_KINDS = (
    "Bäckerei", "Metzgerei", "Schreinerei", "Praxis Dr.", "Kanzlei", "Gärtnerei", "Friseursalon",
    "Elektro", "Malerbetrieb", "Blumen",
)


def _weighted(text: str) -> list[tuple[str, float]]:
    words = text.split()
    pairs = [(words[i], float(words[i + 1])) for i in range(0, len(words), 2)]
    return [(name, weight) for name, weight in pairs if weight > 0]


class _Choice:
    """Pick from weighted items in O(log n) with a given random generator."""

    def __init__(self, items: Sequence[tuple[Any, float]]) -> None:
        self.values = [v for v, _w in items]
        self.cum = list(itertools.accumulate(w for _v, w in items))

    def __call__(self, rnd: random.Random) -> Any:
        return self.values[bisect.bisect_right(self.cum, rnd.random() * self.cum[-1])]


def _surnames() -> list[tuple[str, float]]:
    common = _weighted(_COMMON_SURNAMES)
    common_total = sum(w for _n, w in common)
    known = {n for n, _w in common}
    tail = sorted({(s + k + e).capitalize() for s in _TAIL_STEMS for k in _TAIL_LINKS
                   for e in _TAIL_ENDINGS} - known)  # fmt: skip
    # A fixed shuffle, so the frequent tail names are not all "Ahl…"; a flat Zipf curve
    # gives the tail ~4/5 of all people, as in real German name statistics.
    random.Random(20261123).shuffle(tail)
    raw = [1.0 / (rank + 300) for rank in range(len(tail))]
    scale = 4.0 * common_total / sum(raw)
    return common + [(name, w * scale) for name, w in zip(tail, raw)]


def ascii_fold(text: str) -> str:
    """Transliterate German the way people write it in e-mail addresses (ü→ue, ß→ss)."""
    text = text.translate(str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe",
                                         "Ü": "Ue", "ß": "ss", "ı": "i", "ł": "l"}))  # fmt: skip
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if c.isascii() and not unicodedata.combining(c))


@dataclass(frozen=True)
class SampleCustomer:
    """One generated customer: form fields for ``customers.create`` and an optional card."""

    fields: dict[str, Any]
    card_no: str | None = None


def ean13(body12: str) -> str:
    """Append the EAN-13 check digit."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


class Generator:
    """Deterministic stream of sample customers; the same seed gives the same people."""

    def __init__(self, seed: int = 1, region: str = "koeln", today: dt.date | None = None):
        self.rnd = random.Random(seed)
        self.today = today or dt.date(2026, 11, 1)
        self.surname = _Choice(_surnames())
        self.male = _Choice(_weighted(_MALE))
        self.female = _Choice(_weighted(_FEMALE))
        local = REGIONS[region]
        elsewhere = [c for c in _CITIES if c not in local]
        share = _ELSEWHERE_SHARE * sum(local.values()) / (1 - _ELSEWHERE_SHARE) / len(elsewhere)
        self.city = _Choice([*local.items(), *((c, share) for c in elsewhere)])
        self.domain = _Choice(_MAIL_DOMAINS)
        self.card_seed = self.rnd.randrange(10**9)
        self.count = 0

    def _last_name(self) -> str:
        rnd = self.rnd
        name = self.surname(rnd)
        if rnd.random() < 0.04:  # double surname after marriage
            other = self.surname(rnd)
            if other != name:
                name = f"{name}-{other}"
        return name

    def _phone(self, mobile: bool, area: str) -> str:
        rnd = self.rnd
        if mobile:
            prefix, digits = _MOBILE_PREFIXES[rnd.randrange(len(_MOBILE_PREFIXES))]
        else:
            prefix, digits = area, 11 - len(area)
        number = str(rnd.randint(2, 9)) + "".join(str(rnd.randrange(10)) for _ in range(digits - 1))
        style = rnd.random()
        if style < 0.5:
            return prefix + number
        if style < 0.8:
            return f"{prefix} {number}"
        return f"+49 {prefix[1:]} {number}"

    def _email(self, first: str, last: str, birth: dt.date | None) -> str:
        rnd = self.rnd
        f = ascii_fold(first).lower().replace(" ", "").replace("'", "")
        ln = ascii_fold(last).lower().replace(" ", "").replace("'", "")
        pattern = rnd.random()
        if pattern < 0.35:
            local = f"{f}.{ln}"
        elif pattern < 0.5:
            local = f"{f}{ln}"
        elif pattern < 0.62:
            local = f"{f[0]}.{ln}"
        elif pattern < 0.75 and birth:
            local = f"{ln}{birth.year % 100:02d}"
        elif pattern < 0.88:
            local = f"{f}_{ln}{rnd.randint(1, 99)}"
        else:
            local = f"{f}{rnd.randint(1, 999)}"
        return f"{local}@{self.domain(rnd)}"

    def customer(self) -> SampleCustomer:
        """Return the next generated customer."""
        rnd = self.rnd
        self.count += 1
        female = rnd.random() < 0.54  # shop customers are slightly more often women
        first = (self.female if female else self.male)(rnd)
        last = self._last_name()
        age_days = int(365.25 * min(95, max(16, rnd.gauss(49, 17))))
        birth = self.today - dt.timedelta(days=age_days + rnd.randrange(365))
        city = self.city(rnd)
        postcodes, area = _CITIES[city]
        postcode = rnd.choice(postcodes.split())
        fields: dict[str, Any] = {
            "gender": "f" if female else "m",
            "first_name": first,
            "last_name": last,
            "street": rnd.choice(_STREETS),
            "house_no": str(rnd.randint(1, 180)) + ("a" if rnd.random() < 0.05 else ""),
            "postcode": postcode,
            "city": city,
            "country": "DE",
        }
        if rnd.random() < 0.015:
            fields["title"] = "Prof. Dr." if rnd.random() < 0.1 else "Dr."
        if rnd.random() < 0.02:
            fields["company"] = f"{rnd.choice(_COMPANY_KINDS)} {last}"
        if rnd.random() < 0.85:
            fields["birth_date"] = birth.strftime("%d.%m.%Y")
        if rnd.random() < 0.7:
            fields["email"] = self._email(first, last, birth)
            fields["email_consent"] = rnd.random() < 0.45
        if rnd.random() < 0.62:
            fields["mobile"] = self._phone(True, area)
        if rnd.random() < 0.35:
            fields["phone"] = self._phone(False, area)
        card = None
        if rnd.random() < 0.45:
            # In-store EAN-13 range (prefix 2); the multiplier permutes 10-digit numbers.
            card = ean13("29" + f"{(self.card_seed + self.count * 7919) % 10**10:010d}")
        return SampleCustomer(fields, card)


def generate(count: int, seed: int = 1, region: str = "koeln") -> Iterator[SampleCustomer]:
    """Yield ``count`` sample customers (deterministic for a given seed and region)."""
    gen = Generator(seed, region)
    for _ in range(count):
        yield gen.customer()
