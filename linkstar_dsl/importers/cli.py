"""`linkstar import`: the click command (registered in the main command line as `import`).

Exit codes: 0 every row imported, updated or skipped; 1 some rows were rejected (each listed with
its file, line and reason; the rest was imported); 2 a usage or I/O problem (one line on standard
error; options and files are checked before anything is written).  A one-line summary per file
goes to standard error; with `--format-report json` a machine-readable report goes to standard
output.
"""

from __future__ import annotations

import sys

import click

from . import DEFAULT_DB, FORMATS, TABLES

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2

EPILOG = """\b
Examples:
  linkstar import exports/ --db shop.duckdb
  linkstar import orders.json --format shopify --db shop.duckdb --dry-run
  linkstar import sales.csv --table orders --map order_no=id --map date=placed_at \\
      --default marketplace=web --date-format "%d/%m/%Y" --timezone Europe/Paris

\b
Exit codes:
  0  every row imported, updated or skipped
  1  some rows rejected (listed with file, line and reason); the others were imported
  2  usage or I/O error (one line on standard error)
"""


@click.command("import", epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True)
@click.option("--db", metavar="FILE", default=DEFAULT_DB, show_default=True,
              help="The store (a DuckDB file; created if missing).")
@click.option("--table", type=click.Choice(TABLES), metavar="TABLE",
              help="The table of canonical files: " + ", ".join(TABLES)
                   + " (default: from the file name, e.g. orders.csv).")
@click.option("--format", "format_name", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="The files' format; auto: from the extension and the content.")
@click.option("--map", "renames", multiple=True, metavar="SOURCE=COLUMN",
              help="Read the file's column SOURCE as the store column COLUMN (repeatable).")
@click.option("--map-value", "value_maps", multiple=True, metavar="COLUMN:TEXT=VALUE",
              help="Read TEXT in COLUMN as VALUE, e.g. status:invoiced=paid (repeatable).")
@click.option("--map-event", "events", multiple=True, metavar="EVENT=SOURCE",
              help="Record EVENT at the time in column SOURCE, e.g. delivered=delivery_date (repeatable).")
@click.option("--default", "defaults", multiple=True, metavar="COLUMN=VALUE",
              help="Value for a missing or empty COLUMN; customers.COLUMN for customers created "
                   "from orders (repeatable).")
@click.option("--date-format", "date_formats", multiple=True, metavar="FMT",
              help='strptime format of the dates, e.g. "%m/%d/%Y %H:%M" (repeatable; wins over detection).')
@click.option("--timezone", metavar="TZ", default="UTC", show_default=True,
              help="IANA zone of times written without an offset.")
@click.option("--dry-run", is_flag=True, help="Read, check and count everything; write nothing.")
@click.option("--on-conflict", type=click.Choice(["update", "skip", "error"]), default="update",
              show_default=True,
              help="A row whose key is already stored with other values: update it, keep the stored one, "
                   "or reject the row.")
@click.option("--format-report", "report_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: also print a machine-readable report on standard output.")
def import_command(paths, db, table, format_name, renames, value_maps, events, defaults, date_formats,
                   timezone, dry_run, on_conflict, report_format) -> None:
    """Import orders, customers, events and consents from CSV, Parquet, JSON Lines, Shopify or
    Amazon files into the store."""
    from .messages import UsageProblem
    from .options import ImportOptions, parse_pair, parse_value_map
    from .report import json_report, total_line
    from .run import import_paths

    try:
        options = ImportOptions(
            table=table, format=format_name, dry_run=dry_run, on_conflict=on_conflict,
            renames=tuple(parse_pair("--map", t, "SOURCE=COLUMN") for t in renames),
            value_maps=tuple(parse_value_map(t) for t in value_maps),
            events=tuple(parse_pair("--map-event", t, "EVENT=SOURCE") for t in events),
            defaults=tuple(parse_pair("--default", t, "COLUMN=VALUE") for t in defaults),
            date_formats=tuple(date_formats), timezone=timezone)
        from ..progress import progress_bar

        with progress_bar("importing", unit="rows read") as advance:
            outcomes = import_paths(list(paths), db, options, on_file=_print_file, on_rows=advance)
    except UsageProblem as problem:
        _fail(str(problem))
    except OSError as exc:
        _fail(f"{exc.filename or 'a file'}: cannot be read ({exc.strerror or exc})")
    if len(outcomes) > 1 or dry_run:
        click.echo(total_line(outcomes, dry_run), err=True)
    if report_format == "json":
        sys.stdout.write(json_report(outcomes, db, dry_run))
        sys.stdout.flush()
    raise SystemExit(EXIT_REJECTED if any(o.rejected for o in outcomes) else EXIT_OK)


def _print_file(outcome) -> None:
    for line in [*outcome.problem_lines(), *outcome.warning_lines(), outcome.summary_line()]:
        click.echo(_one_line(line), err=True)


def _fail(message: str) -> None:
    click.echo(f"linkstar: error: {_one_line(message)}", err=True)
    raise SystemExit(EXIT_USAGE)


def _one_line(text: str) -> str:
    """`text` with line breaks and other control characters made visible."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in " ".join(text.splitlines()))
