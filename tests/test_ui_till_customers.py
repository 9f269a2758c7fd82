"""The till's customer screens, driven through real Kivy widgets under Xvfb.

One app runs for the whole module (Kivy has one window per process); each test starts from
the till's home screen. Screenshots go to tests/artifacts/ for people to look at.
"""

from __future__ import annotations

import gettext
import os
from pathlib import Path

import pytest

from kiosk.engine import alerts, customers, groups
from kiosk.engine.store import Store
from kiosk.i18n import DOMAIN, LOCALE_DIR

pytestmark = pytest.mark.display

GERMAN = gettext.translation(DOMAIN, LOCALE_DIR, languages=["de"])
# KIOSK_UPDATE_DOCS=1 also copies the till's picture to the README's docs/screenshots/
DOCS_SCREENSHOTS = Path(__file__).parent.parent / "docs" / "screenshots"


def seed(store: Store) -> dict[str, str]:
    """A few customers, a group with a discount and two alert rules."""
    vip = groups.save(store, "VIP", description="Stammkunden", discount="10", applies_to_specials=True)
    groups.save(store, "Studenten", discount="5", applies_to_specials=False)
    alerts.save_rule(store, "email = ''", "Bitte E-Mail ergänzen")
    alerts.save_rule(store, "has_card = nein", "Kundenkarte anbieten")
    meier = customers.create(
        store,
        {"first_name": "Katharina", "last_name": "Meier", "postcode": "53111", "city": "Bonn",
         "mobile": "0160 4455667", "observation": "Zahlt nur bar"},
        force=True,
    )  # fmt: skip
    groups.assign(store, meier["id"], vip)
    customers.create(
        store,
        {"first_name": "Jürgen", "last_name": "Schäfer", "postcode": "50823", "city": "Köln",
         "email": "j.schaefer@example.com"},
        force=True,
    )  # fmt: skip
    return {"meier": meier["id"]}


@pytest.fixture(scope="module")
def till(xdisplay, tmp_path_factory):
    """The till app in the test process, over a real SQLite file with seeded customers."""
    from tests.support.kivy_driver import running_till

    with running_till(tmp_path_factory.mktemp("till"), seed) as driver:
        yield driver


@pytest.fixture
def ui(till):
    """The till at its home screen, no customer on the sale, keyboard closed."""
    app = till.app
    if app.keyboard.target is not None:
        app.keyboard.target.focus = False
    for popup in list(till.window.children[:-1]):
        if hasattr(popup, "dismiss"):
            popup.dismiss()
    app.session.detach()
    app.home()
    till.wait_until(lambda: app.screens.current == "till" and not app.keyboard.visible, what="home screen")
    return till


def search_for(ui, text: str):
    """Open the search from the till and type ``text`` on the physical keyboard."""
    ui.tap(ui.find("find_customer"))
    screen = ui.app.screen("customer_search")
    ui.wait_until(lambda: ui.app.screens.current == "customer_search", what="search screen")
    query = ui.find("query", root=screen)
    ui.wait_until(lambda: query.focus, what="search box focused")
    ui.type_text(text, into=query)
    ui.wait_until(lambda: screen.searched == text, what=f"results for {text!r}")
    return screen


def result_names(ui, screen) -> list[str]:
    """Names in the rows the results list shows (the widgets, not only the data)."""
    from kiosk.screens.customer_search import CustomerRow

    return [row.name for row in ui.find_all(CustomerRow, root=screen)]


def test_search_as_you_type_lists_the_typed_customer(ui, artifacts_dir):
    screen = search_for(ui, "Schäf")
    assert "Jürgen Schäfer" in result_names(ui, screen)
    assert "Katharina Meier" not in result_names(ui, screen)
    ui.type_text("er 508")  # more letters, and a postcode in any order
    ui.wait_until(lambda: screen.searched == "Schäfer 508", what="refined results")
    assert result_names(ui, screen) == ["Jürgen Schäfer"]
    assert ui.app.keyboard.visible, "the on-screen keyboard opens with the search box"
    ui.screenshot(artifacts_dir / "till-customer-search.png")


def test_detail_shows_observation_red_and_bold_alerts_and_groups(ui, artifacts_dir):
    from kiosk.screens import theme, widgets

    screen = search_for(ui, "Meier")
    row = ui.wait_until(lambda: [r for r in result_names(ui, screen) if r == "Katharina Meier"], what="row")
    assert row
    from kiosk.screens.customer_search import CustomerRow

    ui.tap(next(r for r in ui.find_all(CustomerRow, root=screen) if r.name == "Katharina Meier"))
    detail = ui.app.screen("customer_detail")
    ui.wait_until(lambda: ui.app.screens.current == "customer_detail", what="detail screen")
    banners = ui.find_all(widgets.Banner, root=detail)
    observation = [b for b in banners if b.text == "Zahlt nur bar"]
    assert observation and observation[0].kind == "danger" and observation[0].bold
    label = observation[0].ids.banner_label
    assert label.bold and tuple(label.color) == tuple(theme.DANGER)
    assert "Bitte E-Mail ergänzen" in [b.text for b in banners if b.kind == "warning"]
    assert "Kundenkarte anbieten" in [b.text for b in banners if b.kind == "warning"]
    from kiosk.screens.customer_detail import GroupToggle

    toggles = {t.text.split("  ")[0]: t.state for t in ui.find_all(GroupToggle, root=detail)}
    assert toggles == {"VIP": "down", "Studenten": "normal"}
    ui.screenshot(artifacts_dir / "till-customer-detail.png")

    # on the sale: the till shows the observation red and bold too
    ui.tap(ui.find("attach", root=detail))
    ui.wait_until(lambda: ui.app.screens.current == "till", what="back at the till")
    box = ui.find("customer_box")
    assert box.name == "Katharina Meier"
    shown = box.ids.observation
    assert shown.text == "Zahlt nur bar" and shown.bold and tuple(shown.color) == tuple(theme.DANGER)
    assert {c.text for c in ui.find_all(widgets.Chip, root=box)} == {"VIP  −10 %"}
    ui.screenshot(artifacts_dir / "till.png")
    if os.environ.get("KIOSK_UPDATE_DOCS"):  # the README's picture, without the passing toast
        for toast in ui.find_all(widgets.Toast):
            toast.parent.remove_widget(toast)
        ui.screenshot(DOCS_SCREENSHOTS / "till.png")


def type_on_screen(ui, text: str) -> None:
    """Type with taps on the docked on-screen keyboard (shift for capitals)."""
    keyboard = ui.app.keyboard
    for char in text:
        ui.tap(ui.wait_until(lambda c=char: key_for(keyboard, c, ui), what=f"key {char!r}"))


def key_for(keyboard, char: str, ui):
    """The key that types ``char`` now, switching layers with taps when needed."""
    from kiosk.screens.keyboard import KeyButton

    buttons = [b for b in ui.find_all(KeyButton, root=keyboard)]
    for button in buttons:
        if button.key[1] == char:
            return button
    wanted_shift = char != char.lower()
    for button in buttons:
        command = button.key[2] if button.key[1] is None else None
        if command == "shift" and wanted_shift and keyboard.mode != "shift":
            ui.tap(button)
            return None
        if command == "special" and not wanted_shift:
            ui.tap(button)
            return None
    return None


def open_new_customer_form(ui, query: str):
    search = search_for(ui, query)
    ui.tap(ui.find("new_customer", root=search))
    form = ui.app.screen("customer_form")
    ui.wait_until(lambda: ui.app.screens.current == "customer_form", what="form screen")
    return form


def test_create_with_the_on_screen_keyboard(ui, artifacts_dir):
    form = open_new_customer_form(ui, "Lindner")
    assert form.fields["last_name"].get_value() == "Lindner", "the search text is prefilled"
    first = form.fields["first_name"].input
    ui.tap(first)
    ui.wait_until(lambda: ui.app.keyboard.visible and ui.app.keyboard.target is first, what="keyboard")
    type_on_screen(ui, "Jörg")
    assert first.text == "Jörg"
    postcode = form.fields["postcode"].input
    ui.tap(postcode)
    ui.wait_until(lambda: ui.app.keyboard.active_layout == "numeric", what="number pad")
    type_on_screen(ui, "50667")
    assert postcode.text == "50667"
    ui.screenshot(artifacts_dir / "till-customer-form-keyboard.png")
    ui.tap(ui.find("save", root=form))
    ui.wait_until(lambda: ui.app.screens.current == "till", what="back at the till")
    assert ui.find("customer_box").name == "Jörg Lindner"
    [hit] = customers.find(ui.app.store, "Lindner")
    assert (hit.postcode, hit.display_name) == ("50667", "Jörg Lindner")


def test_duplicate_warning_for_mayer_when_meier_exists(ui, artifacts_dir):
    from kiosk.screens.duplicates import DuplicatePopup, DuplicateRow

    before = customers.count(ui.app.store)
    form = open_new_customer_form(ui, "Mayer")
    form.fields["first_name"].set_value("Katharina")
    ui.tap(ui.find("save", root=form))
    popup = ui.wait_until(lambda: ui.find_all(DuplicatePopup), what="duplicate warning")[0]
    rows = ui.find_all(DuplicateRow, root=popup)
    assert [r.name for r in rows] == ["Katharina Meier"]
    assert rows[0].customer_id == ui.ids["meier"]
    assert customers.count(ui.app.store) == before, "nothing is saved before the cashier decides"
    ui.screenshot(artifacts_dir / "till-duplicate-warning.png")
    # take the known customer instead of creating a second one
    ui.tap(ui.find_button(GERMAN.gettext("Use this customer"), root=rows[0]))
    ui.wait_until(lambda: ui.app.screens.current == "till", what="back at the till")
    assert ui.find("customer_box").name == "Katharina Meier"
    assert customers.count(ui.app.store) == before


def test_bad_email_shows_a_message_and_saves_nothing(ui, artifacts_dir):
    before = customers.count(ui.app.store)
    form = open_new_customer_form(ui, "Brandt")
    email = form.fields["email"]
    ui.type_text("brandt@@example", into=email.input)
    ui.tap(ui.find("save", root=form))
    ui.wait_until(lambda: email.error, what="validation message")
    assert ui.app.screens.current == "customer_form"
    assert email.error in ui.texts(root=form), "the message is shown next to the field"
    assert form.form_error.startswith(GERMAN.gettext("Please check the marked field."))
    assert customers.count(ui.app.store) == before
    ui.screenshot(artifacts_dir / "till-customer-form-error.png")


def test_labels_are_german(ui):
    form = open_new_customer_form(ui, "Neu")
    texts = set(ui.texts(root=form))
    # field labels from the German catalog, not the English message ids
    assert {"Geburtsdatum", "Ort"} <= {t.rstrip(" *") for t in texts}
    assert "Birth date" not in {t.rstrip(" *") for t in texts}
    for msgid in ("Save", "Cancel", "New customer"):
        assert GERMAN.gettext(msgid) in texts
