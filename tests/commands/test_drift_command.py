"""``switchyard drift`` on the real embedded ClickHouse: rows written by the real sink.

Each test writes a week of baseline traffic and a day of recent traffic (the
synthetic draws of ``tests.drift_synthetic``: 300 requests per task and day, with
fallbacks, failed calls and thumbs feedback) and runs the command in-process.
"""

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from commands.cli import main
from processors.drift.windows import Window
from sinks.clickhouse import TelemetrySink
from sinks.drift_queries import read_windows
from tests.drift_synthetic import BASE_MIX, sample, shifted_mix, telemetry, window_stats

WEEK = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 8, tzinfo=UTC))
DAY = (WEEK[1], datetime(2025, 3, 9, tzinfo=UTC))
WINDOWS = ["--baseline", "2025-03-01..2025-03-08", "--recent", "2025-03-08..2025-03-09"]
PER_DAY = 300  # per task


def write_traffic(
    sink: TelemetrySink, recent_mix: dict[str, dict[str, float]], seed: int, tenant: str = "acme"
) -> None:
    rng = np.random.default_rng(seed)
    for label, mix, per_task, (start, end) in (
        ("b", BASE_MIX, 7 * PER_DAY, WEEK),
        ("r", recent_mix, PER_DAY, DAY),
    ):
        for item in telemetry(sample(rng, mix, per_task), tenant, start, end, f"{tenant}-{label}"):
            sink.add(item)
        sink.flush()


def test_a_planted_shift_exits_1_and_names_the_task_and_model(
    cli_telemetry: TelemetrySink, capsys: pytest.CaptureFixture[str]
) -> None:
    write_traffic(cli_telemetry, shifted_mix("code", 0.2), seed=7)
    assert main(["drift", *WINDOWS]) == 1
    out = capsys.readouterr().out
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("SHIFT: ")
    assert "task=code traffic moved to sim-large (sim-small -" in verdict
    assert "task=chat" not in verdict and "task=extraction" not in verdict
    shifted = [line for line in out.splitlines() if line.endswith("SHIFT")]
    assert any(line.startswith("model_mix sim-large") and "task=code" in line for line in shifted)


def test_an_unchanged_mix_exits_0(
    cli_telemetry: TelemetrySink, capsys: pytest.CaptureFixture[str]
) -> None:
    write_traffic(cli_telemetry, BASE_MIX, seed=7)
    assert main(["drift", *WINDOWS, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["drifted"] is False and report["correction"] == "holm"
    assert report["baseline_requests"] == 3 * 7 * PER_DAY
    assert report["recent_requests"] == 3 * PER_DAY
    tested = [c for c in report["comparisons"] if c["p_value"] is not None]
    assert len(tested) == 20  # nothing skipped: 3 tasks x 6 metrics, 2 providers


def test_the_database_sums_what_the_draws_sum(cli_telemetry: TelemetrySink) -> None:
    """The SQL aggregates equal the Python ones over the same rows, for one tenant."""
    write_traffic(cli_telemetry, BASE_MIX, seed=3)
    write_traffic(cli_telemetry, shifted_mix("chat", 0.5), seed=4, tenant="globex")
    rng = np.random.default_rng(3)
    expected = (
        window_stats(sample(rng, BASE_MIX, 7 * PER_DAY), *WEEK),
        window_stats(sample(rng, BASE_MIX, PER_DAY), *DAY),
    )

    def run(sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
        return cli_telemetry.query(sql)

    read = read_windows(run, "switchyard", Window(*WEEK), Window(*DAY), tenant="acme")
    for got, want in zip(read, expected, strict=True):
        assert got.providers == want.providers
        assert got.tasks.keys() == want.tasks.keys()
        for task, window in got.tasks.items():
            assert _flat(window.model_dump()) == pytest.approx(_flat(want.tasks[task].model_dump()))


def _flat(fields: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested sums as one level (``cost.total``), so approx can compare the float ones."""
    flat: dict[str, float] = {}
    for name, value in fields.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{name}.")
        else:
            flat[prefix + name] = value
    return flat


def test_too_little_data_says_so_and_exits_0(
    cli_telemetry: TelemetrySink, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    for item in telemetry(sample(rng, {"chat": BASE_MIX["chat"]}, 20), "acme", *DAY, "few"):
        cli_telemetry.add(item)
    cli_telemetry.flush()
    assert main(["drift", *WINDOWS]) == 0
    out = capsys.readouterr().out
    assert "the baseline window has 0 requests: too little data to compare" in out
    assert out.strip().endswith("nothing flagged (exit 0)")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--recent", "yesterday"], "--recent: expected START..END"),
        (["--baseline", "2025-03-01..2025-03-09", "--recent", "2025-03-08..2025-03-09"], "overlap"),
        (["--alpha", "1.5"], "--alpha must be between 0 and 1"),
        (["--tenant", "x' OR 1=1 --"], "is not a tenant id"),
    ],
)
def test_usage_errors_exit_2(
    options: list[str],
    message: str,
    cli_telemetry: TelemetrySink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["drift", *options]) == 2
    assert message in capsys.readouterr().err
