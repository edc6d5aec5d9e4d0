"""``switchyard report`` end to end in-process: generated telemetry in the CLI's embedded
database, the command's terminal, JSON and HTML output, and its messages without data."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from commands.cli import main
from schemas.report import Report
from sinks.clickhouse import TelemetrySink
from tests.sinks.test_report_source import generated

# Three hours of traffic ending an hour ago: inside --since 1d, outside --since 30m.
STARTED = datetime.now(UTC) - timedelta(hours=4)


@pytest.fixture
def telemetry(cli_telemetry: TelemetrySink) -> list[Any]:
    events = generated(400, start=STARTED)
    for item in events:
        cli_telemetry.add(item)
    cli_telemetry.flush()
    return [e.request for e in events]


def test_terminal_summary(telemetry: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "1d"]) == 0
    out = capsys.readouterr().out
    assert f"requests: {len(telemetry)} (" in out
    cost = sum(r.cost_usd for r in telemetry)
    assert f"cost: {cost:,.2f} USD" in out
    for heading in ("Cost and latency per model:", "Errors and fallbacks per provider:",
                    "Budget burn:", "Routing mix per task:"):  # fmt: skip
        assert heading in out
    small = [r for r in telemetry if r.model == "sim-small"]
    assert re.search(rf"^sim-small\s+{len(small)}\s", out, re.M)
    # The sample config's three tenants' budgets, acme's monthly.
    assert re.search(r"^acme\s+tenant\s+month\s+50\.00\s", out, re.M)
    assert re.search(r"^initech\s+tenant\s+day\s+5\.00\s", out, re.M)
    assert re.search(r"^code\s+\d+\s+sim-", out, re.M)


def test_json_for_one_tenant(telemetry: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "1d", "--tenant", "globex", "--json"]) == 0
    report = Report.model_validate(orjson.loads(capsys.readouterr().out))
    mine = [r for r in telemetry if r.tenant == "globex"]
    assert report.data.totals.requests == len(mine)
    assert report.data.totals.cost_usd == pytest.approx(sum(r.cost_usd for r in mine))
    assert [(b.tenant, b.scope) for b in report.burn] == [("globex", "tenant")]
    assert report.burn[0].spent_usd == pytest.approx(
        sum(r.cost_usd for r in mine if r.finished_at.month == datetime.now(UTC).month)
    )


def test_html_report_is_written_with_every_plot(
    telemetry: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "out" / "report.html"
    assert main(["report", "--since", "1d", "--html", str(page)]) == 0
    assert f"wrote the HTML report to {page}" in capsys.readouterr().err
    text = page.read_text()
    assert text.count("<svg") == 5
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert f"{len(telemetry):,}" in text


def test_an_empty_window_says_so(
    telemetry: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    assert main(["report", "--since", "30m", "--html", str(page)]) == 0
    assert "no requests in the last 30m" in capsys.readouterr().err
    assert not page.exists()


def test_no_telemetry_database_yet(
    chdb_client: Any, chdb_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("CLICKHOUSE_URL", f"chdb://{chdb_path}")
    monkeypatch.setenv("SWITCHYARD_HOME", str(tmp_path))
    chdb_client.command("DROP DATABASE IF EXISTS switchyard")
    assert main(["report"]) == 1
    assert "no telemetry yet" in capsys.readouterr().err


def test_bad_options_are_refused(
    cli_telemetry: TelemetrySink, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--since", "7x"]) == 2
    assert "--since '7x'" in capsys.readouterr().err
    assert main(["report", "--tenant", "a'b"]) == 2
    assert "not a tenant name" in capsys.readouterr().err


def test_help_names_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert re.search(r"report +Summarize the telemetry", capsys.readouterr().out)
    assert main(["report", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--html" in out and "--since" in out and "--tenant" in out
