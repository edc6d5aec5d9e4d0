"""Drift detection, pure: calibrated over many seeds, and the pieces one by one.

The many-seed tests draw synthetic windows (``tests.drift_synthetic``): a day of
1,200 requests (400 per task) against a week of 8,400 at the same rate.
"""

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats

from processors.drift import detect_drift
from processors.drift.significance import holm, mean_test, mix_test, pooled_columns, rate_test
from processors.drift.windows import Window, check_apart, default_windows, parse_range
from schemas.drift import DriftReport, DriftSettings, Moments, TaskWindow, WindowStats
from tests.drift_synthetic import BASE_MIX, sample, shifted_mix, window_stats

WEEK = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 8, tzinfo=UTC))
DAY = (WEEK[1], datetime(2025, 3, 9, tzinfo=UTC))
PER_TASK = 400  # recent requests per task; the baseline week has 7 times as many
SEEDS = range(200)
ALPHA = DriftSettings().alpha
# No minimum effects: the test's calibration and Holm's correction alone must keep it quiet.
NO_FLOOR = DriftSettings(min_effect={})
# A run of 200 with at most alpha of flagged runs exceeds this with probability < 0.1%.
FLAGGED_AT_MOST = int(stats.binom.isf(0.001, len(SEEDS), ALPHA))


def check(
    seed: int, recent_mix: dict[str, dict[str, float]], settings: DriftSettings
) -> DriftReport:
    rng = np.random.default_rng(seed)
    baseline = window_stats(sample(rng, BASE_MIX, 7 * PER_TASK), *WEEK)
    recent = window_stats(sample(rng, recent_mix, PER_TASK), *DAY)
    return detect_drift(baseline, recent, settings)


def test_unchanged_traffic_flags_at_most_alpha_of_runs() -> None:
    reports = [check(seed, BASE_MIX, NO_FLOOR) for seed in SEEDS]
    flagged = sum(r.drifted for r in reports)
    assert len(reports[0].tested) == 20  # 3 tasks x 6 metrics, 2 providers
    assert flagged <= FLAGGED_AT_MOST  # measured: 3 of 200 (bound 8)
    # The bound would catch a missing correction: uncorrected, a third of the runs flag.
    uncorrected = sum(any((c.p_value or 1) < ALPHA for c in r.tested) for r in reports)
    assert uncorrected > 3 * FLAGGED_AT_MOST  # measured: 32 of 200


def test_a_planted_shift_is_flagged_and_named_in_every_seed() -> None:
    shifted = shifted_mix("chat", 0.15)  # 15% of chat moved from sim-small to sim-large
    elsewhere = 0
    for seed in SEEDS:
        report = check(10_000 + seed, shifted, DriftSettings())
        moved = {(c.metric, c.scope): c for c in report.significant}
        mix = moved.get(("model_mix", "task=chat"))
        assert mix is not None and mix.subject == "sim-large", seed
        assert mix.change == pytest.approx(0.15, abs=0.08)
        assert ("cost_per_request", "task=chat") in moved, seed
        elsewhere += any(not scope.startswith("task=chat") for _, scope in moved)
    # What did not move flags no more often than in unchanged traffic.
    assert elsewhere <= FLAGGED_AT_MOST


def test_holm_multiplies_by_rank_and_stays_monotone() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def test_rare_models_are_pooled_until_every_expected_count_is_five() -> None:
    baseline = {"a": 700, "b": 280, "c": 15, "d": 5}
    recent = {"a": 70, "b": 28, "c": 2}  # expected recent counts: c ~1.6, d ~0.5
    columns = pooled_columns(baseline, recent)
    assert columns == [(700, 70), (300, 30)]  # c and d pooled, then joined to b
    assert mix_test({"a": 100}, {"a": 40}) is None  # one column: nothing to compare
    tested = mix_test({"a": 500, "b": 500}, {"a": 100, "b": 100})
    assert tested is not None and tested.p_value == pytest.approx(1.0)


def test_means_and_rates() -> None:
    same = Moments(n=50, total=50.0, total_sq=50.0)
    assert mean_test(same, same).p_value == 1.0
    assert mean_test(same, Moments(n=50, total=100.0, total_sq=200.0)).p_value == 0.0
    assert rate_test(30, 1000, 3, 100).p_value == pytest.approx(1.0)
    assert rate_test(30, 1000, 30, 100).p_value < 1e-6
    assert rate_test(30, 1000, 30, 100).test == "fisher-exact"


def _window(task: TaskWindow, when: tuple[datetime, datetime]) -> WindowStats:
    return WindowStats(start=when[0], end=when[1], tasks={"chat": task})


def test_too_little_data_is_said_not_flagged() -> None:
    baseline = TaskWindow(requests=500, answered_by={"sim-small": 500})
    recent = TaskWindow(requests=12, answered_by={"sim-large": 12})
    report = detect_drift(_window(baseline, WEEK), _window(recent, DAY))
    assert not report.drifted and report.tested == []
    mix = report.comparisons[0]
    assert mix.skipped == "too little data: 500 and 12 answered requests (each window needs 30)"
    assert mix.subject == "sim-large" and mix.effect == 1.0


def test_a_tiny_move_at_huge_volume_is_below_the_minimum_effect() -> None:
    baseline = TaskWindow(requests=10**6, answered_by={"a": 600_000, "b": 400_000})
    recent = TaskWindow(requests=10**6, answered_by={"a": 595_000, "b": 405_000})
    report = detect_drift(_window(baseline, WEEK), _window(recent, DAY))
    mix = report.comparisons[0]
    assert mix.p_adjusted is not None and mix.p_adjusted < 1e-10
    assert mix.effect == pytest.approx(0.005) and not mix.significant
    assert detect_drift(_window(baseline, WEEK), _window(recent, DAY), NO_FLOOR).drifted


def test_binary_feedback_is_compared_as_a_rate() -> None:
    def judged(ups: int, n: int) -> TaskWindow:
        return TaskWindow(feedback={"thumbs": Moments(n=n, total=ups, total_sq=ups)})

    report = detect_drift(_window(judged(80, 100), WEEK), _window(judged(50, 100), DAY))
    feedback = next(c for c in report.comparisons if c.metric == "feedback")
    assert feedback.test == "fisher-exact" and feedback.significant
    assert feedback.change == pytest.approx(-0.3)


def test_windows() -> None:
    now = datetime(2025, 3, 9, 12, tzinfo=UTC)
    baseline, recent = default_windows(now, baseline_days=7, recent_hours=24)
    assert recent == Window(datetime(2025, 3, 8, 12, tzinfo=UTC), now)
    assert baseline == Window(datetime(2025, 3, 1, 12, tzinfo=UTC), recent.start)
    assert parse_range("2025-03-01..2025-03-08T06:00", "--baseline") == Window(
        datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 8, 6, tzinfo=UTC)
    )
    with pytest.raises(ValueError, match=r"--recent: expected START\.\.END"):
        parse_range("2025-03-01", "--recent")
    with pytest.raises(ValueError, match="the end must be after the start"):
        parse_range("2025-03-02..2025-03-01", "--recent")
    with pytest.raises(ValueError, match="overlap"):
        check_apart(baseline, Window(baseline.end - (recent.end - recent.start), now))
