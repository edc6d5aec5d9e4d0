"""``switchyard whatif`` over the embedded ClickHouse, run in-process through ``cli.main``."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from commands.cli import main
from schemas.telemetry import AttemptRow, TelemetryEvent
from sinks.clickhouse import TelemetrySink
from tests.helpers import SAMPLE_CONFIG, request_row

NOW = datetime.now(UTC)

# (request_id, tenant, task, tier) and the model the sample config routes each to.
LOGGED = [
    ("a-chat-1", "acme", "chat", "balanced"),  # sim-small
    ("a-chat-2", "acme", "chat", "balanced"),  # sim-small
    ("a-code-1", "acme", "code", "balanced"),  # sim-medium
    ("g-chat-1", "globex", "chat", "premium"),  # sim-medium (eu/onprem only)
    ("i-chat-1", "initech", "chat", "economy"),  # sim-local
]


@pytest.fixture
def telemetry(cli_telemetry: TelemetrySink) -> TelemetrySink:
    return cli_telemetry


def _log(sink: TelemetrySink) -> None:
    for request_id, tenant, task, tier in LOGGED:
        row = request_row(request_id, NOW - timedelta(hours=1), tenant=tenant, task=task,
                          quality=tier)  # fmt: skip
        sink.add(TelemetryEvent(request=row))
    # Long ago: outside --since 7d, so it must not count.
    sink.add(TelemetryEvent(request=request_row("a-old", NOW - timedelta(days=30))))
    # sim-small has enough successful calls for its observed latency to count.
    attempts = [
        AttemptRow(
            request_id=f"lat-{i}",
            attempt=0,
            tenant="acme",
            model="sim-small",
            provider="sim",
            outcome="ok",
            error_code="",
            latency_ms=40.0 + i % 5,
            finished_at=NOW - timedelta(hours=2),
        )
        for i in range(25)
    ]
    sink.add(TelemetryEvent(attempts=attempts))
    sink.flush()


def _dearer_medium(tmp_path: Path) -> Path:
    text = SAMPLE_CONFIG.read_text()
    medium = "price_in_per_mtok: 0.60\n    price_out_per_mtok: 2.40"
    assert text.count(medium) == 1
    path = tmp_path / "new.yaml"
    path.write_text(text.replace(medium, "price_in_per_mtok: 1.20\n    price_out_per_mtok: 4.80"))
    return path


def test_doubled_prices_raise_cost_only_where_that_model_serves(
    telemetry: TelemetrySink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log(telemetry)
    assert main(["whatif", "--config", str(_dearer_medium(tmp_path)), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)

    groups = {(g["tenant"], g["task"]): g for g in report["groups"]}
    assert set(groups) == {("acme", "chat"), ("acme", "code"), ("globex", "chat"),
                           ("initech", "chat")}  # fmt: skip
    assert groups[("acme", "chat")]["n"] == 2  # a-old is outside the window
    for dearer in [("acme", "code"), ("globex", "chat")]:
        assert groups[dearer]["cost_change_pct"] == pytest.approx(100)
        assert groups[dearer]["cost_after_usd"] > groups[dearer]["cost_before_usd"] > 0
    for same in [("acme", "chat"), ("initech", "chat")]:
        assert groups[same]["cost_change_pct"] == 0
        assert groups[same]["cost_after_usd"] == groups[same]["cost_before_usd"] > 0
    for g in groups.values():
        assert (g["changed_share"], g["rejected_after"]) == (0, 0)
        assert g["quality_before"] == g["quality_after"]
    assert groups[("acme", "chat")]["latency_before_ms"] == pytest.approx(42)  # observed
    assert groups[("acme", "code")]["latency_before_ms"] == 800  # typical: too few calls
    assert report["requests"] == 5
    assert report["total"]["cost_change_pct"] > 0
    assert (report["since"], report["new"]) == ("7d", str(tmp_path / "new.yaml"))


def test_table_output_and_narrow_window(
    telemetry: TelemetrySink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log(telemetry)
    assert main(["whatif", "--config", str(_dearer_medium(tmp_path))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["tenant", "task", "n", "changed"]
    code = next(line for line in lines if line.startswith("acme          code"))
    assert "+100.0%" in code
    assert lines[-1].split()[:3] == ["*", "*", "5"]

    assert main(["whatif", "--config", str(SAMPLE_CONFIG), "--since", "30m"]) == 0
    out = capsys.readouterr().out
    assert "no logged requests in the window" in out


def test_bad_since_is_refused(telemetry: TelemetrySink, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["whatif", "--config", str(SAMPLE_CONFIG), "--since", "a week"]) == 2
    assert "--since 'a week'" in capsys.readouterr().err
