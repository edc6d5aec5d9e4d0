"""The cascade with learned checks: escalation is the threshold rule, a check reads
only the answer of the model called first, and live routing matches offline."""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from processors.cascade import check_answer
from processors.learning.cascade_route import cascade_batch, first_rungs, second_rungs
from schemas.plan import AnswerCheck
from tests.helpers import make_request

# Three models, columns cheap, mid, strong; costs in units of the reference (1.0).
QUALITY = np.array([[0.6, 0.7, 0.9], [0.2, 0.5, 0.95], [0.9, 0.92, 0.95], [0.5, 0.6, 0.8]])
COST = np.tile([0.02, 0.2, 1.0], (4, 1))


def test_second_rung_escalates_exactly_under_the_threshold() -> None:
    lam = 0.1
    utility = QUALITY - lam * COST
    first = np.zeros(4, dtype=np.int64)
    threshold = utility[:, 1:].max(axis=1)  # the best other model's utility
    for delta in (-0.05, -1e-6, 0.0, 1e-6, 0.05):
        seen = threshold + delta
        second = second_rungs(QUALITY, COST, first, seen, lam, 1.0)
        escalated = second >= 0
        assert list(escalated) == [s < t for s, t in zip(seen, threshold, strict=True)]
        best_other = utility[:, 1:].argmax(axis=1) + 1
        assert list(second[escalated]) == list(best_other[escalated])
    # No check (NaN): the answer stands.
    none = second_rungs(QUALITY, COST, first, np.full(4, np.nan), lam, 1.0)
    assert list(none) == [-1] * 4


def test_a_learned_check_passes_exactly_at_or_over_its_threshold() -> None:
    request = make_request("What is 6 times 7?")
    asked: list[tuple[str, str, str, str]] = []

    def judge(model: str, prompt: str, task: str, answer: str) -> float | None:
        asked.append((model, prompt, task, answer))
        return 0.62

    for threshold, passes in ((0.6, True), (0.62, True), (0.6200001, False), (0.9, False)):
        check = AnswerCheck(kind="learned", threshold=threshold)
        result = check_answer(check, request, "42", model="cheap", task="math", judge=judge)
        assert result.passed is passes, threshold
        assert "0.620" in result.detail
    assert asked[-1] == ("cheap", "What is 6 times 7?", "math", "42")
    # A model without a learned check, or no checks loaded: accepted, and it says so.
    unknown = check_answer(
        AnswerCheck(kind="learned", threshold=0.5), request, "42", model="x", judge=lambda *a: None
    )
    assert unknown.passed and "no learned check" in unknown.detail
    assert check_answer(AnswerCheck(kind="learned", threshold=0.5), request, "42").passed


def test_the_arithmetic_check_escalates_on_a_step_that_does_not_compute() -> None:
    request = make_request("?")
    check = AnswerCheck(kind="arithmetic")
    assert check_answer(check, request, "3 * 4 = 12, then 12 + 5 = 17\n#### 17").passed
    failed = check_answer(check, request, "3 * 4 = 12, then 12 + 5 = 18\n#### 18")
    assert not failed.passed and failed.detail == "1 of 2 steps do not compute"
    assert "12" not in failed.detail  # no answer text in the detail: it reaches telemetry


def test_a_check_reads_only_the_first_called_models_column() -> None:
    checked = np.array([[0.9, np.nan, np.nan], [0.1, np.nan, np.nan]] * 2)
    has_check = np.array([True, False, False])
    lam = 0.1
    first = first_rungs(QUALITY, COST, has_check, lam, 1.0)
    base = cascade_batch(QUALITY, COST, checked, lam, 1.0)
    poisoned = checked.copy()
    for row in range(4):  # any value where a model was not called first changes nothing
        for col in range(3):
            if col != first[row]:
                poisoned[row, col] = np.nan if col else 0.5
    again = cascade_batch(QUALITY, COST, poisoned, lam, 1.0)
    assert list(again.first) == list(base.first) and list(again.second) == list(base.second)
    assert list(base.first) == list(first)


def test_trying_the_cheap_checked_model_first_is_worth_its_option() -> None:
    # Row 1: cheap is predicted poor (0.2), but with a check it is still worth a try
    # at 2% of the strong model's cost; without a check the plain rule goes straight.
    has = np.array([True, False, False])
    with_check = first_rungs(QUALITY, COST, has, 0.05, 1.0)
    without = first_rungs(QUALITY, COST, np.zeros(3, dtype=bool), 0.05, 1.0)
    assert with_check[1] == 0 and without[1] == 2
    # The value of trying cheap first: its utility, plus when its answer is bad the best
    # other model's; straight to the best when that is worth more.
    lam = 0.3
    utility = QUALITY - lam * COST
    tried = utility[:, 0] + (1 - QUALITY[:, 0]) * np.maximum(utility[:, 1:].max(axis=1), 0)
    expected = np.where(tried >= utility[:, 1:].max(axis=1), 0, utility[:, 1:].argmax(axis=1) + 1)
    assert list(first_rungs(QUALITY, COST, has, lam, 1.0)) == list(expected)


@dataclass
class SpyVerifier:
    """Answers P(good) = 0.5 and remembers every (model, answer) it was asked about."""

    known: set[str]
    asked: list[tuple[str, str]] = field(default_factory=list)

    def knows(self, model: str) -> bool:
        return model in self.known

    def probability(self, model: str, prompt: str, task: str, answer: str) -> float:
        self.asked.append((model, answer))
        return 0.5


def test_predict_cascade_reads_only_the_answer_of_the_model_it_called() -> None:
    from commands.router_inputs import cascade_calls
    from schemas.outcomes import OutcomeRow

    rows = [
        OutcomeRow.model_validate(
            {
                "id": f"r{i}",
                "prompt": "p",
                "task": "t",
                "outcomes": {
                    m: {"score": 1.0, "cost_usd": c, "response": f"{m} says {i}"}
                    for m, c in (("cheap", 0.02), ("mid", 0.2), ("strong", 1.0))
                },
            }
        )
        for i in range(4)
    ]
    spy = SpyVerifier({"cheap", "mid"})
    fake: Any = type(
        "FakeModel",
        (),
        {
            "verifier": spy,
            "cascade_calibration": object(),
            "reference_cost": 1.0,
            "manifest": None,
        },
    )()
    calls = cascade_calls(fake, rows, ["cheap", "mid", "strong"], QUALITY, COST, 0.1)
    assert len(spy.asked) == sum(1 for c in calls if c[0] in (0, 1))
    names = ["cheap", "mid", "strong"]
    for (model, answer), called in zip(
        spy.asked, [c for c in calls if c[0] in (0, 1)], strict=True
    ):
        assert model == names[called[0]]
        assert answer.startswith(model)
    assert all(not math.isnan(len(c)) and 1 <= len(c) <= 2 for c in calls)


def test_no_checks_means_no_cascade_to_predict() -> None:
    from commands.router_inputs import cascade_calls
    from schemas.errors import UsageError

    fake: Any = type(
        "FakeModel",
        (),
        {
            "verifier": None,
            "cascade_calibration": None,
            "manifest": type("M", (), {"checks_note": "no responses in the data"})(),
        },
    )()
    with pytest.raises(UsageError, match="no responses"):
        cascade_calls(fake, [], ["a"], QUALITY[:0], COST[:0], 0.1)
