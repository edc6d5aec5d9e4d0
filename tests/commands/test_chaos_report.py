"""The chaos summary as tables: every count, circuit, event and check is printed."""

from typing import Any

import pytest

from commands.chaos import print_summary


def summary(checks: dict[str, bool]) -> dict[str, Any]:
    return {
        "scenario": "provider-outage",
        "ok": all(checks.values()),
        "sent": 20,
        "answered": 20,
        "lost": 0,
        "duplicate_replies": 0,
        "provider_calls": 31,
        "fallbacks": 9,
        "retried": 2,
        "expired": 0,
        "statuses": {"ok": 19, "error": 1},
        "p50_ms": 12.5,
        "p99_ms": 80.1,
        "telemetry_rows": 20,
        "telemetry_raw_rows": 21,
        "circuits": {"sim-small": {"opened": 1, "closed": 1, "cool_downs": 0, "final": "closed"}},
        "dead_letters_by_code": {"provider_unavailable": 1},
        "events": [{"at_s": 1.5, "event": "sim-small down"}],
        "checks": checks,
    }


def test_plain_summary_names_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary(summary({"no job lost": True, "circuit opened": False}))
    out, err = capsys.readouterr()
    assert "scenario provider-outage: FAILED" in err
    lines = [" ".join(line.split()) for line in out.splitlines()]
    for expected in (
        "provider_calls 31",
        "status error 1",
        "dead letters provider_unavailable 1",
        "telemetry rows (raw) 20 (21)",
        "sim-small 1 1 0 closed",
        "t+1.5s sim-small down",
        "held no job lost",
        "FAILED circuit opened",
    ):
        assert expected in lines


def test_a_run_whose_checks_hold_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary(summary({"no job lost": True}))
    out, err = capsys.readouterr()
    assert "scenario provider-outage: OK" in err
    assert "FAILED" not in out


def test_a_refusal_counts_as_the_deadlines_only_when_the_deadline_excluded_a_model() -> None:
    from datetime import UTC, datetime

    from commands.chaos.report import _refused_for_deadline
    from processors.policy import DEADLINE_REASON
    from schemas.messages import InferenceReply, RoutingExplanation

    def refused(reasons: dict[str, str], status: str = "rejected") -> InferenceReply:
        routing = RoutingExplanation(
            strategy="rules", task="chat", task_source="default", quality="balanced",
            chosen=None, reason="no model satisfies the request's constraints", rejected=reasons,
        )  # fmt: skip
        return InferenceReply(
            request_id="r", tenant="acme", status=status, routing=routing,  # type: ignore[arg-type]
            finished_at=datetime.now(UTC),
        )  # fmt: skip

    late = f"expected latency 900 ms exceeds the 300 ms {DEADLINE_REASON}"
    assert _refused_for_deadline(refused({"sim-small": late, "sim-large": "region eu"}))
    assert not _refused_for_deadline(refused({"sim-small": "region eu"}))
    assert not _refused_for_deadline(refused({"sim-small": late}, status="error"))
