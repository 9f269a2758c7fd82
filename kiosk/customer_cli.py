"""``kiosk customers …``: import and export the customer list, print the paper form.

    kiosk customers import FILE [--map "Spalte=field" …] [--dry-run] [--sheet NAME]
                                [--skip-errors] [--duplicates refuse|skip|import]
    kiosk customers export FILE [--query TEXT]
    kiosk customers form OUT.pdf
    kiosk customers fields                 the field names --map accepts

The commands open the device store named by ``--config``, as the app does.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from kiosk.config import load
from kiosk.engine import customer_export, customer_import, registration_form
from kiosk.engine.store import Store
from kiosk.i18n import N_, _, set_language

_LOGGER = logging.getLogger(__name__)

_STAGES = {
    "read": N_("Reading"),
    "check": N_("Checking"),
    "import": N_("Importing"),
    "export": N_("Exporting"),
}
_SHOW_AT_MOST = 30  # errors and duplicates printed; the rest are counted


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("customers", help="import, export and the paper registration form")
    actions = parser.add_subparsers(dest="customers_action", metavar="action", required=True)

    imp = actions.add_parser("import", help="import customers from an Excel file (.xlsx)")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--map", action="append", default=[], metavar="COLUMN=FIELD",
        help='map a column (header or letter) to a field, e.g. --map "Kd-Nr=customer_no";'
             ' an empty field ignores the column ("Fax=")',
    )  # fmt: skip
    imp.add_argument("--dry-run", action="store_true", help="check everything, import nothing")
    imp.add_argument("--sheet", help="worksheet to read (default: the active one)")
    imp.add_argument("--skip-errors", action="store_true", help="leave out rows with errors")
    imp.add_argument(
        "--duplicates", choices=customer_import.DUPLICATE_POLICIES, default="refuse",
        help="rows resembling existing customers or earlier rows: refuse the import (default),"
             " skip those rows, or import them anyway",
    )  # fmt: skip
    imp.add_argument("--no-new-groups", action="store_true",
                     help="unknown customer groups are errors instead of being created")  # fmt: skip
    imp.add_argument("--max-rows", type=int, default=customer_import.Limits.max_rows)
    imp.set_defaults(func=run_import)

    exp = actions.add_parser("export", help="export customers to an Excel file (.xlsx)")
    exp.add_argument("file", type=Path)
    exp.add_argument("--query", help="only the customers this search finds")
    exp.set_defaults(func=run_export)

    form = actions.add_parser("form", help="write the paper registration form (PDF)")
    form.add_argument("out", type=Path)
    form.set_defaults(func=run_form)

    fields = actions.add_parser("fields", help="list the field names --map accepts")
    fields.set_defaults(func=run_fields)


def _open_store(args: argparse.Namespace) -> Store:
    config = load(args.config)
    set_language(config.language)
    return Store(config.db_path, config.identity, secret_key=config.secret_key())


class _Bars:
    """One tqdm bar per stage on stderr, fed by the engine's progress callback."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = tqdm(
                total=total or None, desc=_(_STAGES.get(stage, stage)), unit=_("rows"),
                file=sys.stderr, dynamic_ncols=True, mininterval=0.2,
            )  # fmt: skip
            self.bars[stage] = bar
        if total and bar.total != max(total, done):
            bar.total = max(total, done)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _print_list(title: str, items: list, out=None) -> None:
    out = out or sys.stdout  # looked up per call: tests and callers may swap sys.stdout
    if not items:
        return
    print(title, file=out)
    for item in items[:_SHOW_AT_MOST]:
        print(f"  {item}", file=out)
    if len(items) > _SHOW_AT_MOST:
        print("  " + _("… and {n} more").format(n=len(items) - _SHOW_AT_MOST), file=out)


def run_import(args: argparse.Namespace) -> int:
    store = _open_store(args)
    bars = _Bars()
    try:
        limits = customer_import.Limits(max_rows=args.max_rows)
        table = customer_import.read_workbook(
            args.file, sheet=args.sheet, limits=limits, progress=bars
        )
        bars.close()
        mapping = customer_import.propose_mapping(store, table)
        if args.map:
            overrides = customer_import.parse_overrides(args.map)
            mapping = customer_import.override_mapping(store, table, mapping, overrides)
        labels = customer_import.targets(store)
        print(
            _("Sheet {sheet!r}: header in row {row}, {n} rows.").format(
                sheet=table.sheet, row=table.header_row, n=len(table.rows)
            )
        )
        print(_("Columns:"))
        for index in range(len(table.headers)):
            target = mapping.get(index)
            shown = f"{target} ({labels[target]})" if target else _("(ignored)")
            print(f"  {table.column_name(index):<30} → {shown}")
        report = customer_import.check(
            store, table, mapping, create_groups=not args.no_new_groups, progress=bars
        )
        bars.close()
        _print_list(_("Errors ({n} rows):").format(n=report.error_rows), report.errors)
        _print_list(
            _("Possible duplicates ({n} rows):").format(n=len(report.duplicates)),
            report.duplicates,
        )
        if report.new_groups:
            print(_("New customer groups: {names}").format(names=", ".join(report.new_groups)))
        if args.dry_run:
            print(
                _("Dry run: {ok} of {n} rows are ready to import; nothing was imported.").format(
                    ok=sum(1 for r in report.rows if not r.errors and not r.duplicates),
                    n=len(report.rows),
                )
            )
            return 0 if not report.error_rows else 1
        result = customer_import.commit(
            store, report, skip_errors=args.skip_errors, duplicates=args.duplicates,
            progress=bars,
        )  # fmt: skip
        bars.close()
        _print_list(_("Skipped rows:"), [f"{s.row}: {s.reason}" for s in result.skipped])
        print(
            _("Imported {n} customers; {skipped} rows skipped.").format(
                n=len(result.created), skipped=len(result.skipped)
            )
        )
        return 0
    except (
        customer_import.FileRefused,
        customer_import.MappingError,
        customer_import.ImportRejected,
    ) as exc:
        bars.close()
        print(f"kiosk: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def run_export(args: argparse.Namespace) -> int:
    store = _open_store(args)
    bars = _Bars()
    try:
        count = customer_export.export(store, args.file, query=args.query, progress=bars)
        bars.close()
        print(_("Exported {n} customers to {path}.").format(n=count, path=args.file))
        return 0
    except OSError as exc:
        bars.close()
        print(f"kiosk: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def run_form(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        path = registration_form.write(store, args.out)
        print(_("Registration form written to {path}.").format(path=path))
        return 0
    except OSError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def run_fields(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        for name, label in customer_import.targets(store).items():
            print(f"{name:<24} {label}")
        return 0
    finally:
        store.close()
