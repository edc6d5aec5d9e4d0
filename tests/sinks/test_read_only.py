"""Telemetry reads on the real embedded engine: one read-only statement, bounded, no files.

Each refusal is tried where it would do harm: through ``TelemetryReader`` (the
path every command and the query service take), and where the text check alone
is not the defence, straight on the reader's client, to show the session itself
refuses.
"""

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from schemas.errors import QueryRejected
from sinks.clickhouse import TelemetryReader, TelemetrySink, migrate, open_client, open_reader
from sinks.sql_guard import (
    MAX_EXECUTION_S,
    MAX_RESULT_ROWS,
    READ_ONLY_SETTINGS,
    TABLE_FUNCTIONS,
    check_read_only,
)
from tests.sinks.test_clickhouse import event


@pytest.fixture
def database(chdb_client: Any) -> str:
    name = f"t_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, name)
    sink = TelemetrySink(chdb_client, name)
    sink.add(event("r-1"))
    sink.flush()
    return name


@pytest.fixture
def reader(chdb_path: Path) -> TelemetryReader:
    return open_reader(f"chdb://{chdb_path}")


def _rejected(reader: TelemetryReader, sql: str) -> str:
    with pytest.raises(QueryRejected) as refused:
        reader.query(sql)
    return str(refused.value)


def test_a_normal_select_still_works(reader: TelemetryReader, database: str) -> None:
    columns, rows = reader.query(
        f"WITH 1 AS one SELECT request_id, one FROM {database}.requests FINAL"
    )
    assert (columns, rows) == (["request_id", "one"], [("r-1", 1)])
    _, tables = reader.query(
        f"SELECT name FROM system.tables WHERE database = '{database}' AND name = 'requests'"
    )
    assert tables == [("requests",)]


def test_into_outfile_is_refused_and_writes_nothing(
    reader: TelemetryReader, tmp_path: Path
) -> None:
    for sql in (
        f"SELECT 1 INTO OUTFILE '{tmp_path / 'a.txt'}'",
        f"SELECT 'x' INTO /* hidden */ OUTFILE '{tmp_path / 'b.txt'}' APPEND",
        f"select 1 into\noutfile '{tmp_path / 'c.txt'}' TRUNCATE",
    ):
        assert "INTO OUTFILE" in _rejected(reader, sql)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT file('/proc/self/environ')",  # the scalar file() still reads under readonly=1
        "SELECT * FROM file('/proc/self/environ', 'LineAsString')",
        "SELECT * FROM FILE ('/proc/self/environ', 'LineAsString')",
        "SELECT * FROM `file`('/proc/self/environ', 'LineAsString')",
        "SELECT * FROM file/**/('/proc/self/environ', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
        "SELECT * FROM remote('127.0.0.1', system.one)",
        "SELECT * FROM s3('http://127.0.0.1:1/x', 'CSV')",
        "SELECT * FROM executable('env', 'LineAsString', 'x String')",
        "SELECT * FROM merge('system', '^settings$')",  # served under readonly=1
        "SELECT * FROM python(x)",
        "SELECT * FROM numbers(10) AS n",
        "SELECT getSetting('max_execution_time')",
        "SELECT sleepEachRow(3) FROM system.one",
        "SELECT sleep(3)",
        "SELECT dictGet('d', 'x', 1)",
        "SELECT catboostEvaluate('/etc/passwd', 1)",
    ],
)
def test_files_urls_other_servers_and_settings_are_refused(
    reader: TelemetryReader, sql: str
) -> None:
    assert "is refused" in _rejected(reader, sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM system.settings",  # served under readonly=1
        "SELECT * FROM system.processes",
        "SELECT * FROM system.build_options",
        "SELECT * FROM `system`.`query_log`",
        'SELECT * FROM "system" . "server_settings"',
        "DESCRIBE TABLE system.settings",
        "SHOW CREATE TABLE system.users",
    ],
)
def test_system_tables_beyond_the_catalogue_are_refused(reader: TelemetryReader, sql: str) -> None:
    assert "system." in _rejected(reader, sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 SETTINGS readonly=0",
        "SELECT 1 SETTINGS max_execution_time=0",
        "SET readonly = 0",
        "INSERT INTO x VALUES (1)",
        "SELECT 1; SELECT 2",
        "SHOW SETTINGS LIKE '%'",
        "SHOW PROCESSLIST",
        "SELECT 'unterminated",
        "SELECT 1 # comment that the engine may not take as one",
        "SELECT $$heredoc$$",
    ],
)
def test_other_statements_and_settings_clauses_are_refused(
    reader: TelemetryReader, sql: str
) -> None:
    _rejected(reader, sql)


def test_strings_and_comments_neither_hide_nor_trigger_a_refusal(
    reader: TelemetryReader,
) -> None:
    # A refused name inside a string or a comment is text, not a call.
    assert reader.query("SELECT 'file(x) INTO OUTFILE system.settings' -- file('y')") == (
        ["'file(x) INTO OUTFILE system.settings'"],
        [("file(x) INTO OUTFILE system.settings",)],
    )
    # A quote inside a comment does not open a string that would hide what follows.
    assert "is refused" in _rejected(reader, "SELECT 1 -- it's\n, file('/etc/hostname')")
    # An escaped quote does not close the string early.
    assert "is refused" in _rejected(reader, r"SELECT 'a\'', file('/etc/hostname')")


def test_every_table_function_of_the_engine_is_refused(chdb_client: Any) -> None:
    engine = {row[0].lower() for row in chdb_client.query(
        "SELECT name FROM system.table_functions"
    ).result_rows}  # fmt: skip
    assert engine and engine <= TABLE_FUNCTIONS
    for name in engine:
        with pytest.raises(QueryRejected):
            check_read_only(f"SELECT * FROM {name}('x')")


def test_the_session_itself_is_read_only_and_bounded(
    reader: TelemetryReader, database: str
) -> None:
    # Past the text check, straight on the reader's client: the engine refuses too.
    client = reader.client
    settings = client.query(
        "SELECT getSetting('readonly'), getSetting('max_execution_time'), "
        "getSetting('max_result_rows')"
    ).result_rows[0]
    assert tuple(map(float, settings)) == (1, MAX_EXECUTION_S, MAX_RESULT_ROWS)
    for sql in (
        f"INSERT INTO {database}.feedback (request_id) VALUES ('x')",
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1 SETTINGS max_execution_time = 0",
        "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
        "SELECT * FROM file('/proc/self/environ', 'LineAsString')",
    ):
        with pytest.raises(Exception, match=r"readonly|READONLY"):
            client.query(sql)


def test_the_writers_client_stays_writable_beside_a_reader(
    chdb_client: Any, reader: TelemetryReader, database: str
) -> None:
    # chdb keeps settings per handle: the reader's readonly=1 must not reach the writer.
    sink = TelemetrySink(chdb_client, database)
    sink.add(event("r-2"))
    sink.flush()
    _, rows = reader.query(f"SELECT count() FROM {database}.requests FINAL")
    assert rows == [(2,)]


def test_a_long_query_and_a_large_result_are_cut_off(
    chdb_client: Any, chdb_path: Path, database: str
) -> None:
    sink = TelemetrySink(chdb_client, database)
    sink.add(event("r-2"))
    sink.add(event("r-3"))
    sink.flush()
    limits = {**READ_ONLY_SETTINGS, "max_execution_time": 1, "max_result_rows": 2}
    limits["readonly"] = limits.pop("readonly")  # still last
    reader = TelemetryReader(open_client(f"chdb://{chdb_path}", limits))
    endless = (
        "SELECT count() FROM (SELECT arrayJoin(range(100000)) AS a) AS x "
        "CROSS JOIN (SELECT arrayJoin(range(100000)) AS b) AS y "
        "CROSS JOIN (SELECT arrayJoin(range(100000)) AS c) AS z"
    )
    started = time.monotonic()
    with pytest.raises(Exception, match=r"TIMEOUT_EXCEEDED|Timeout exceeded"):
        reader.query(endless)
    assert time.monotonic() - started < 10
    with pytest.raises(Exception, match=r"TOO_MANY_ROWS|Limit for result exceeded"):
        reader.query(f"SELECT request_id FROM {database}.requests")
