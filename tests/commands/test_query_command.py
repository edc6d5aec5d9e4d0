"""``switchyard query`` when no telemetry worker holds the database: the same checks in-process."""

from pathlib import Path

import pytest

from commands.cli import main


@pytest.fixture(autouse=True)
def _cli_on_the_test_database(
    chdb_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLICKHOUSE_URL", f"chdb://{chdb_path}")
    monkeypatch.setenv("SWITCHYARD_HOME", str(tmp_path))  # no telemetry.json: in-process


def test_a_select_is_served_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "SELECT 6 * 7 AS answer", "--json"]) == 0
    assert capsys.readouterr().out == '{"answer":42}\n'


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT file('/proc/self/environ')", "file() is refused"),
        ("SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", "url() is refused"),
        ("SELECT 1 INTO OUTFILE '{dir}/x.txt'", "INTO OUTFILE is refused"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS clauses"),
        ("SELECT name, value FROM system.settings", "system.settings is refused"),
    ],
)
def test_refusals_are_the_same_in_process(
    sql: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", sql.replace("{dir}", str(tmp_path))]) == 1
    out, err = capsys.readouterr()
    assert reason in err and out == ""
    assert not (tmp_path / "x.txt").exists()
