"""`linkstar import`: canonical files, marketplace exports, foreign CSVs, errors and safety.

Every test imports real files into a real DuckDB store in a temporary folder.  The fixtures in
`tests/data/import/` are small hand-written files; the Olist sample from `../shared/data/` is
used when present (and the test is skipped when it is not).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from click.testing import CliRunner

from linkstar_dsl import importers
from linkstar_dsl.importers import ImportOptions, import_paths, run, staging
from linkstar_dsl.importers.cli import import_command
from linkstar_dsl.importers.dates import DateReader
from linkstar_dsl.importers.messages import RowError
from linkstar_dsl.store import DATA_TABLES

FIXTURES = Path(__file__).resolve().parent / "data" / "import"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OLIST = SHARED_DATA / "olist_orders_sample.csv"


def run_import(*args: str) -> tuple[int, str, str]:
    """The command through click's runner: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(import_command, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def rows(db: Path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def snapshot(db: Path) -> dict[str, list]:
    """Every data table's rows, sorted: equal snapshots mean an unchanged store."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in DATA_TABLES}
    finally:
        con.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- canonical


def test_canonical_folder_imports_every_table_in_load_order(tmp_path):
    db = tmp_path / "store.duckdb"
    code, _, err = run_import(str(FIXTURES / "canonical"), "--db", str(db))
    assert code == 0, err
    lines = err.splitlines()
    assert [line.split(":")[0].rsplit("/", 1)[-1] for line in lines[:4]] == [
        "customers.csv", "orders.csv", "order_events.jsonl", "consents.jsonl"]
    assert "4 files: 13 rows read, 13 imported, 0 updated, 0 skipped, 0 rejected" in lines[-1]
    hanako = rows(db, "SELECT phone, tags, birthday, locale, order_count, lifetime_value, "
                      "lifetime_value_currency, first_order_at FROM customers WHERE id = 'C-100'")[0]
    assert hanako[:4] == ("+819012345678", ["vip", "line"], datetime(1990, 4, 12).date(), "ja")
    # O-1002 is refunded: counted as an order, not as lifetime value.
    assert hanako[4:7] == (2, Decimal("4980.00"), "JPY")
    assert hanako[7] == datetime(2024, 5, 1, 0, 30, tzinfo=UTC)
    placed = dict(rows(db, "SELECT id, placed_at FROM orders"))
    assert placed["O-1003"] == datetime(2024, 6, 20, 19, 0, tzinfo=UTC)       # -04:00 offset
    assert placed["O-1004"] == datetime(2024, 7, 1, 12, 0, tzinfo=UTC)        # naive: --timezone UTC
    assert rows(db, "SELECT data->>'carrier' FROM order_events WHERE id = 'O-1001:delivered'") == [("yamato",)]
    assert rows(db, "SELECT level, double_opt_in_at FROM consents WHERE customer_id = 'C-300'") == [
        ("double_opt_in", datetime(2024, 7, 1, 10, 4, tzinfo=UTC))]


def test_customers_without_orders_keep_their_imported_figures(tmp_path):
    (tmp_path / "customers.csv").write_text(
        "id,country,order_count,lifetime_value,lifetime_value_currency\n"
        "C-100,JP,7,120000,JPY\nC-900,US,3,250.50,USD\n", encoding="utf-8")
    db = tmp_path / "store.duckdb"
    run_import(str(tmp_path / "customers.csv"), "--db", str(db))
    run_import(str(FIXTURES / "canonical" / "orders.csv"), "--db", str(db))
    assert rows(db, "SELECT id, order_count, lifetime_value FROM customers WHERE id IN ('C-100', 'C-900') "
                    "ORDER BY id") == [("C-100", 2, Decimal("4980.00")), ("C-900", 3, Decimal("250.50"))]


def test_naive_times_take_the_timezone_option(tmp_path):
    db = tmp_path / "store.duckdb"
    code, _, err = run_import(str(FIXTURES / "canonical" / "orders.csv"), "--db", str(db), "--timezone", "Europe/Berlin")
    assert code == 0, err
    assert rows(db, "SELECT placed_at FROM orders WHERE id = 'O-1004'") == [(datetime(2024, 7, 1, 10, 0, tzinfo=UTC),)]


def test_parquet_written_by_duckdb_imports_like_the_csv(tmp_path):
    from_csv, from_parquet = tmp_path / "csv.duckdb", tmp_path / "parquet.duckdb"
    assert run_import(str(FIXTURES / "canonical" / "orders.csv"), "--db", str(from_csv))[0] == 0
    parquet = tmp_path / "orders.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE o AS SELECT * REPLACE (CAST(total AS DECIMAL(18, 2)) AS total, "
                "CAST(placed_at AS TIMESTAMPTZ) AS placed_at) FROM read_csv(?, all_varchar = true)",
                [str(FIXTURES / "canonical" / "orders.csv")])
    con.execute(f"COPY o TO '{parquet}' (FORMAT parquet)")
    con.close()
    code, _, err = run_import(str(parquet), "--db", str(from_parquet))
    assert code == 0, err
    assert "4 rows read (parquet → orders): 4 imported" in err
    assert snapshot(from_csv)["orders"] == snapshot(from_parquet)["orders"]


# ------------------------------------------------------------------------------ exports


def test_shopify_orders_become_orders_customers_events_and_consents(tmp_path):
    db = tmp_path / "store.duckdb"
    code, _, err = run_import(str(FIXTURES / "shopify" / "orders.json"), "--db", str(db))
    assert code == 1
    assert "orders.json:117: total_price: a value is required" in err
    assert 'orders.json:75: warning: customer.phone "030 1234567" is not in E.164 form; left empty' in err
    assert "4 rows read (shopify → orders): 3 imported, 0 updated, 1 rejected" in err
    assert rows(db, "SELECT id, status, marketplace, fulfillment, country, state, total, total_currency, item_count "
                    "FROM orders ORDER BY id") == [
        ("5608123450001", "delivered", "shopify", "merchant", "JP", "JP-13", Decimal("4980.00"), "JPY", 2),
        ("5608123450002", "refunded", "shopify", "merchant", "US", "NY", Decimal("35.90"), "USD", 1),
        ("5608123450003", "canceled", "shopify", "merchant", "DE", "BE", Decimal("59.00"), "EUR", 3)]
    events = rows(db, "SELECT order_id, event, occurred_at FROM order_events ORDER BY order_id, occurred_at, event")
    assert [(o[-1], e) for o, e, _ in events] == [
        ("1", "ordered"), ("1", "paid"), ("1", "shipped"), ("1", "delivered"),
        ("2", "ordered"), ("2", "paid"), ("2", "refunded"), ("3", "ordered"), ("3", "canceled")]
    assert rows(db, "SELECT occurred_at FROM order_events WHERE id = '5608123450001:delivered'") == [
        (datetime(2024, 5, 4, 5, 12, tzinfo=UTC),)]
    customers = {r[0]: r[1:] for r in rows(db, "SELECT id, name, phone, locale, timezone, tags, source FROM customers")}
    assert customers["7301001"] == ("Hanako Sato", "+819012345678", "ja", "Asia/Tokyo", ["vip", "line-friend"], "shopify")
    assert customers["7301003"][1:3] == (None, "de")
    guest = [key for key in customers if key.startswith("email:")]
    assert len(guest) == 1 and customers[guest[0]][1] == "+12125550143"
    consents = rows(db, "SELECT customer_id, channel, level, granted_at, source, evidence->>'order_id' "
                        "FROM consents ORDER BY customer_id")
    assert consents == [
        ("7301001", "email", "double_opt_in", datetime(2024, 4, 20, 9, 5, tzinfo=UTC), "shopify_import", "5608123450001"),
        ("7301003", "sms", "express", datetime(2024, 6, 1, 8, 0, tzinfo=UTC), "shopify_import", "5608123450003")]


def test_shopify_unsubscribe_revokes_the_open_grant(tmp_path):
    db = tmp_path / "store.duckdb"
    run_import(str(FIXTURES / "shopify" / "orders.json"), "--db", str(db))
    page = json.loads((FIXTURES / "shopify" / "orders.json").read_text(encoding="utf-8"))
    later = page["orders"][0]
    later.update(id=5608123450099, created_at="2024-08-01T10:00:00+09:00", processed_at="2024-08-01T10:00:00+09:00")
    later["customer"]["email_marketing_consent"] = {
        "state": "unsubscribed", "opt_in_level": "confirmed_opt_in", "consent_updated_at": "2024-07-15T12:00:00+09:00"}
    (tmp_path / "later.jsonl").write_text(json.dumps(later) + "\n", encoding="utf-8")
    code, _, err = run_import(str(tmp_path / "later.jsonl"), "--db", str(db))
    assert code == 0, err
    assert "consents revoked 1" in err
    assert rows(db, "SELECT revoked_at FROM consents WHERE customer_id = '7301001' AND channel = 'email'") == [
        (datetime(2024, 7, 15, 3, 0, tzinfo=UTC),)]


def test_amazon_orders_pages_in_both_shapes(tmp_path):
    db = tmp_path / "store.duckdb"
    code, _, err = run_import(str(FIXTURES / "amazon"), "--db", str(db), "--format-report", "json")
    assert code == 1
    assert 'orders-page1.json:57: PurchaseDate: "not a date" is not a date' in err
    found = {r[0]: r[1:] for r in rows(db, "SELECT id, status, fulfillment, country, state, total, total_currency, "
                                           "item_count, customer_id FROM orders")}
    assert found["503-2857931-4411801"][:7] == ("shipped", "FBA", "JP", "東京都", Decimal("3960.00"), "JPY", 2)
    assert found["111-4419027-7733012"][:6] == ("pending", "FBM", "US", "WA", Decimal("0.00"), "USD")
    assert found["302-7712093-2210945"][0] == "canceled"
    assert found["026-1198370-5521944"][0] == "paid"
    assert found["026-1198370-5521944"][-1] == "amazon:026-1198370-5521944"   # no buyer e-mail
    # The same buyer (same relay address) on two pages is one customer with two orders.
    assert found["503-2857931-4411802"][-1] == found["503-2857931-4411801"][-1]
    assert rows(db, "SELECT order_count, lifetime_value, locale, source FROM customers WHERE id = ?",
                [found["503-2857931-4411801"][-1]]) == [(2, Decimal("5940.00"), "ja", "amazon")]
    assert rows(db, "SELECT data->>'from' FROM order_events WHERE id = '302-7712093-2210945:canceled'") == [
        ("LastUpdateDate",)]
    report = json.loads(CliRunner().invoke(import_command, [str(FIXTURES / "amazon"), "--db", str(db),
                                                            "--format-report", "json"]).stdout)
    assert report["totals"] == {"read": 6, "imported": 0, "updated": 0, "skipped": 5, "rejected": 1}


# -------------------------------------------------------------------------------- Olist


def documented_olist_command() -> list[str]:
    """The command line in the package docstring, as a list of arguments after `linkstar import`."""
    text = importers.__doc__.split("imports with::", 1)[1].strip().split("\n\n", 1)[0]
    words = shlex.split(text.replace("\\\n", " "))
    assert words[:2] == ["linkstar", "import"]
    return words[2:]


@pytest.mark.skipif(not OLIST.exists(), reason="the shared Olist sample is not here")
def test_olist_sample_imports_with_the_documented_command(tmp_path):
    db = tmp_path / "olist.duckdb"
    args = documented_olist_command()
    args[args.index("../shared/data/olist_orders_sample.csv")] = str(OLIST)
    args[args.index("--db") + 1] = str(db)
    code, out, err = run_import(*args, "--format-report", "json")
    assert code == 0, err
    report = json.loads(out)["files"][0]
    data_rows = sum(1 for _ in OLIST.open(encoding="utf-8")) - 1
    assert report["read"] == data_rows == report["imported"] + report["updated"] + report["skipped"] + report["rejected"]
    assert report["imported"] == data_rows and report["rejected"] == 0
    assert report["ignored_columns"] == []
    assert dict(rows(db, "SELECT status, count(*) FROM orders GROUP BY ALL")) == {
        "delivered": 4856, "shipped": 61, "canceled": 25 + 24, "paid": 12 + 20}
    assert rows(db, "SELECT count(*), count(DISTINCT country), min(locale), max(locale) FROM customers") == [
        (data_rows, 1, "pt", "pt")]
    events = dict(rows(db, "SELECT event, count(*) FROM order_events GROUP BY ALL"))
    assert events["ordered"] == data_rows and events["canceled"] == 49
    # 10/2/2017 10:56 in São Paulo (UTC-3 then) is 13:56 UTC.
    assert rows(db, "SELECT placed_at FROM orders WHERE id = 'e481f51cbdc54678b7cc49136f2d6af7'") == [
        (datetime(2017, 10, 2, 13, 56, tzinfo=UTC),)]
    code, out, _ = run_import(*args, "--format-report", "json")
    assert json.loads(out)["totals"]["skipped"] == data_rows


# ----------------------------------------------------------------------------- bad rows


def test_bad_rows_are_reported_with_line_and_reason_and_the_rest_imports(tmp_path):
    db = tmp_path / "store.duckdb"
    code, out, err = run_import(str(FIXTURES / "bad" / "orders.csv"), "--db", str(db), "--format-report", "json")
    assert code == 1
    name = str(FIXTURES / "bad" / "orders.csv")
    expected = [
        '3: placed_at: "31/31/2024" is not a date',
        '4: status: "invoiced" is not one of pending, paid, shipped, delivered, canceled, refunded, returned '
        "(map it with --map-value status:invoiced=VALUE)",
        '5: total: "8,00" is not a number',
        '9: placed_at: "3/4/2024 11:00" could be March 4 or April 3; settle it with --date-format '
        '(for example "%m/%d/%Y %H:%M")',
        '10: repeats id "B-1" of line 2',
        "11: customer_id: a value is required",
        "12: this row has 7 fields, the header has 9",
        '13: total: "19.999" has more than 2 decimal places',
    ]
    for line in expected:
        assert f"{name}:{line}" in err
    assert f'{name}:8: country: "XX" is not one of JP, US' in err
    report = json.loads(out)["files"][0]
    assert (report["read"], report["imported"], report["rejected"]) == (12, 3, 9)
    assert [p["line"] for p in report["problems"]] == [3, 4, 5, 8, 9, 10, 11, 12, 13]
    stored = dict(rows(db, "SELECT id, tracking_url FROM orders"))
    assert stored == {"B-1": None, "B-5": "https://track.example/5\n?note=two-lines", "B-11": None}
    assert rows(db, "SELECT total_currency, placed_at FROM orders WHERE id = 'B-11'") == [
        ("EUR", datetime(2024, 5, 1, 8, 0, tzinfo=UTC))]


def test_unreadable_rows_are_rejected_not_dropped(tmp_path):
    (tmp_path / "order_events.jsonl").write_bytes(
        b'{"id": "e1", "order_id": "o1", "event": "delivered", "occurred_at": "2024-05-01T10:00:00Z"}\n'
        b'{"id": "e2", "order_id": "o1", "event": "delivered"\n'
        b'\n'
        b'["not", "an", "object"]\n'
        b'{"id": "e3", "order_id": "o1", "event": "caf\xe9", "occurred_at": "2024-05-01T10:00:00Z"}\n'
        b'{"id": "e4", "order_id": "o1", "event": "shipped", "occurred_at": 1714550400, "data": {"n": 1.5}}\n')
    db = tmp_path / "store.duckdb"
    code, _, err = run_import(str(tmp_path / "order_events.jsonl"), "--db", str(db))
    assert code == 1
    assert "order_events.jsonl:2: this line is not valid JSON" in err
    assert "order_events.jsonl:4: this line holds a list, not a JSON object" in err
    assert "order_events.jsonl:5: this row is not valid UTF-8 text" in err
    assert "5 rows read (jsonl → order_events): 2 imported, 0 updated, 3 rejected" in err
    assert rows(db, "SELECT occurred_at, data FROM order_events WHERE id = 'e4'") == [
        (datetime(2024, 5, 1, 8, 0, tzinfo=UTC), '{"n":1.5}')]


# ----------------------------------------------------------------- re-import and conflicts


def test_reimporting_changes_nothing(tmp_path):
    db = tmp_path / "store.duckdb"
    paths = [str(FIXTURES / "canonical"), str(FIXTURES / "shopify"), str(FIXTURES / "amazon")]
    run_import(*paths, "--db", str(db))
    before = snapshot(db)
    code, out, _ = run_import(*paths, "--db", str(db), "--format-report", "json")
    assert code == 1     # the fixtures' two bad rows, again
    totals = json.loads(out)["totals"]
    assert totals == {"read": 23, "imported": 0, "updated": 0, "skipped": 21, "rejected": 2}
    assert snapshot(db) == before


def changed_orders(tmp_path: Path) -> Path:
    text = (FIXTURES / "canonical" / "orders.csv").read_text(encoding="utf-8")
    changed = tmp_path / "orders.csv"
    changed.write_text(text.replace("O-1004,C-300,web,merchant,paid", "O-1004,C-300,web,merchant,shipped"),
                       encoding="utf-8")
    return changed


@pytest.mark.parametrize("policy, code, status, figures", [
    ("update", 0, "shipped", (0, 1, 3, 0)),
    ("skip", 0, "paid", (0, 0, 4, 0)),
    ("error", 1, "paid", (0, 0, 3, 1)),
])
def test_on_conflict_policies(tmp_path, policy, code, status, figures):
    db = tmp_path / "store.duckdb"
    run_import(str(FIXTURES / "canonical" / "orders.csv"), "--db", str(db))
    exit_code, out, err = run_import(str(changed_orders(tmp_path)), "--db", str(db), "--on-conflict", policy,
                                     "--format-report", "json")
    assert exit_code == code
    totals = json.loads(out)["totals"]
    assert (totals["imported"], totals["updated"], totals["skipped"], totals["rejected"]) == figures
    assert rows(db, "SELECT status FROM orders WHERE id = 'O-1004'") == [(status,)]
    if policy == "error":
        assert ('orders.csv:5: id "O-1004" is already in the store with other values '
                "(use --on-conflict update or skip)") in err


def test_dry_run_writes_nothing(tmp_path):
    fresh = tmp_path / "fresh.duckdb"
    code, _, err = run_import(str(FIXTURES / "canonical"), "--db", str(fresh), "--dry-run")
    assert code == 0, err
    assert "would be 4 imported" in err and "(dry run: nothing written)" in err
    assert not fresh.exists()
    db = tmp_path / "store.duckdb"
    run_import(str(FIXTURES / "canonical" / "customers.csv"), "--db", str(db))
    digest = file_digest(db)
    code, _, err = run_import(str(FIXTURES / "canonical"), str(FIXTURES / "shopify"), "--db", str(db), "--dry-run")
    assert code == 1
    assert "3 rows read (csv → customers): would be 0 imported, 0 updated, 3 skipped" in err
    assert file_digest(db) == digest
    assert rows(db, "SELECT count(*) FROM orders") == [(0,)]


def test_a_crash_mid_file_leaves_the_store_unchanged(tmp_path, monkeypatch):
    db = tmp_path / "store.duckdb"
    run_import(str(FIXTURES / "canonical" / "customers.csv"), "--db", str(db))
    before = snapshot(db)
    calls = []
    original = staging.StagedFile.load_batch

    def load_then_fail(self):
        calls.append(1)
        original(self)
        if len(calls) == 2:
            raise RuntimeError("injected failure")

    monkeypatch.setattr(run, "BATCH_SIZE", 1)
    monkeypatch.setattr(staging.StagedFile, "load_batch", load_then_fail)
    with pytest.raises(RuntimeError, match="injected failure"):
        import_paths([str(FIXTURES / "canonical" / "orders.csv")], str(db), ImportOptions())
    assert len(calls) == 2       # one batch was already staged when it failed
    assert snapshot(db) == before
    monkeypatch.undo()
    assert run_import(str(FIXTURES / "canonical" / "orders.csv"), "--db", str(db))[0] == 0
    assert rows(db, "SELECT count(*) FROM orders") == [(4,)]


# ------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("args, message", [
    (["{fixtures}/shopify/orders.json", "--map", "a=b"], "--map applies to csv, parquet and jsonl files"),
    (["{fixtures}/bad/orders.csv", "--map", "id=nope"], "--map id=nope: the orders table has no column nope"),
    (["{fixtures}/bad/orders.csv", "--map", 'x=id"; DROP TABLE orders; --'], "--map x=id\""),
    (["{fixtures}/bad/orders.csv", "--map-event", "deliverd=placed_at"], "did you mean delivered?"),
    (["{fixtures}/bad/orders.csv", "--timezone", "Mars/Olympus"], "--timezone Mars/Olympus: not an IANA time zone"),
    (["{fixtures}/bad/orders.csv", "--default", "total=abc"], '--default total=abc: "abc" is not a number'),
    (["{fixtures}/bad/orders.csv", "--map", "nothing"], "--map nothing: expected SOURCE=COLUMN"),
    (["{fixtures}/canonical/customers.csv", "--table", "orders"], "no column for orders.customer_id"),
    (["{fixtures}/shopify/orders.json", "--format", "csv", "--table", "orders"], "no column for orders.id"),
    (["{missing}"], "cannot be read (no such file)"),
])
def test_usage_errors_are_one_line_with_exit_2(tmp_path, args, message):
    db = tmp_path / "store.duckdb"
    filled = [a.format(fixtures=FIXTURES, missing=tmp_path / "missing.csv") for a in args]
    code, out, err = run_import(*filled, "--db", str(db))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("linkstar: error: ") and message in err
    assert not db.exists() or rows(db, "SELECT count(*) FROM orders") == [(0,)]


def test_olist_like_file_without_table_names_the_fix(tmp_path):
    foreign = tmp_path / "export.csv"
    foreign.write_text("order_id,order_purchase_timestamp\nA,10/2/2017 10:56\n", encoding="utf-8")
    code, _, err = run_import(str(foreign), "--db", str(tmp_path / "s.duckdb"))
    assert code == 2 and "name the file after a table" in err and "or pass --table" in err


def test_values_travel_as_data_never_as_sql(tmp_path):
    hostile = "x'); DROP TABLE orders; --"
    (tmp_path / "customers.csv").write_text(f'id,country,name\nC-1,JP,"{hostile}"\n', encoding="utf-8")
    db = tmp_path / "store.duckdb"
    assert run_import(str(tmp_path / "customers.csv"), "--db", str(db))[0] == 0
    assert rows(db, "SELECT name FROM customers") == [(hostile,)]
    assert rows(db, "SELECT count(*) FROM orders") == [(0,)]


def test_console_entry_point_exit_codes(tmp_path):
    db = tmp_path / "store.duckdb"
    program = "from linkstar_dsl.importers.cli import import_command; import_command()"
    done = subprocess.run([sys.executable, "-c", program, str(FIXTURES / "bad" / "orders.csv"), "--db", str(db)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert re.search(r"orders\.csv:3: placed_at: .*is not a date", done.stderr)


def test_the_command_line_lists_the_store_tables():
    assert importers.TABLES == DATA_TABLES


# -------------------------------------------------------------------------------- dates


@pytest.mark.parametrize("text, expected", [
    ("2024-03-05T14:30:00+09:00", datetime(2024, 3, 5, 5, 30, tzinfo=UTC)),
    ("2024-03-05T05:30:00Z", datetime(2024, 3, 5, 5, 30, tzinfo=UTC)),
    ("2024-03-05 14:30", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
    ("2024-03-05 14:30:15", datetime(2024, 3, 5, 14, 30, 15, tzinfo=UTC)),
    ("2024/3/5 9:05", datetime(2024, 3, 5, 9, 5, tzinfo=UTC)),
    ("3/25/2024 9:05", datetime(2024, 3, 25, 9, 5, tzinfo=UTC)),
    ("25/3/2024", datetime(2024, 3, 25, tzinfo=UTC)),
    ("5.3.2024", datetime(2024, 3, 5, tzinfo=UTC)),
    ("5.3.2024 14:30", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
    ("1709649000", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
    ("7/7/2024", datetime(2024, 7, 7, tzinfo=UTC)),
])
def test_flexible_dates(text, expected):
    assert DateReader().timestamp(text) == expected


@pytest.mark.parametrize("text, code", [
    ("3/4/2024", "ambiguous-date"), ("31/31/2024", "not-a-date"), ("2024-02-30", "not-a-date"),
    ("yesterday", "not-a-date"), ("12345", "not-a-date"),
])
def test_dates_that_are_refused(text, code):
    with pytest.raises(RowError) as caught:
        DateReader().timestamp(text)
    assert caught.value.problem.code == code


def test_explicit_format_wins_and_settles_ambiguity():
    reader = DateReader(("%d/%m/%Y %H:%M",), ZoneInfo("Asia/Tokyo"))
    assert reader.timestamp("3/4/2024 09:00") == datetime(2024, 4, 3, 0, 0, tzinfo=UTC)
    with pytest.raises(RowError) as caught:
        reader.timestamp("2024-04-03T09:00:00+09:00")
    assert caught.value.problem.code == "date-format-mismatch"


def test_wall_clock_times_across_daylight_saving():
    reader = DateReader(time_zone=ZoneInfo("America/New_York"))
    assert reader.timestamp("2024-03-09 12:00") == datetime(2024, 3, 9, 17, 0, tzinfo=UTC)     # EST
    assert reader.timestamp("2024-03-11 12:00") == datetime(2024, 3, 11, 16, 0, tzinfo=UTC)    # EDT
    assert reader.timestamp("2024-03-10 02:30") == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)    # gap: moved on
    assert reader.timestamp("2024-11-03 01:30") == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)    # twice: first
