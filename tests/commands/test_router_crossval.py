"""``switchyard router crossval``: repeated random splits, each trained and evaluated exactly
as ``router train`` and ``router eval`` would, and the per-split figures summed up right."""

from pathlib import Path
from typing import Any

import orjson
import pytest

from commands.cli import main
from processors.learning.crossval import resplit, summarise
from schemas.outcomes import OutcomeRow
from schemas.router_eval import CalibratedResult, EvalReport, Interval
from tests.synthetic_outcomes import synthetic_rows, write_rows


def _rows(n: int, seed: int, responses: bool = False) -> list[OutcomeRow]:
    rows = synthetic_rows(n, seed=seed, with_split=True, responses=responses)
    return [OutcomeRow.model_validate(row) for row in rows]


def test_resplit_is_seeded_and_differs_from_split_to_split() -> None:
    files = {"a": _rows(2000, seed=3)}
    first = resplit(files, 0, seed=1, test_share=0.3)
    again = resplit(files, 0, seed=1, test_share=0.3)
    other = resplit(files, 1, seed=1, test_share=0.3)

    def tests(split: dict[str, list[OutcomeRow]]) -> set[str]:
        return {row.id for row in split["a"] if row.effective_split == "test"}

    assert tests(first) == tests(again)
    assert tests(first) != tests(other)
    assert 0.26 < len(tests(first)) / 2000 < 0.34
    # the rows' own splits are ignored, nothing else changes
    assert tests(first) != {row.id for row in files["a"] if row.split == "test"}
    assert [r.model_copy(update={"split": None}) for r in first["a"]] == [
        r.model_copy(update={"split": None}) for r in files["a"]
    ]


def _result(name: str, quality_share: float, cost_share: float, goal: float) -> CalibratedResult:
    interval = Interval(low=0.0, high=1.0)
    return CalibratedResult(
        name=name, goal=goal, absolute=False, setting=0.1, reached_on_train=True,
        train_quality_share=goal, train_cost_share=cost_share, cost_usd=cost_share,
        quality=quality_share, quality_share=quality_share, quality_share_ci=interval,
        cost_share=cost_share, cost_share_ci=interval, zero_router_quality=None,
        within_2_points=abs(quality_share - goal) <= 0.02,
    )  # fmt: skip


def test_summarise_counts_each_tier_over_the_splits(tmp_path: Path) -> None:
    base = _eval_report(_rows(300, seed=4), tmp_path)
    reports = [
        base.model_copy(update={"calibrated": [_result("balanced", q, c, 0.95)]})
        for q, c in [(0.96, 0.30), (0.92, 0.40), (0.99, 0.35)]
    ]
    summary = summarise(reports, 0.3, seed=0, rows=300)
    (tier,) = summary.tiers
    assert tier.name == "balanced"
    assert tier.quality_share == [0.96, 0.92, 0.99]
    assert tier.quality_share_mean == pytest.approx((0.96 + 0.92 + 0.99) / 3)
    assert tier.quality_share_sd == pytest.approx(0.0351188, abs=1e-6)
    assert tier.cost_share_mean == pytest.approx(0.35)
    assert (tier.within_2_points, tier.reached_goal) == (1, 2)  # 0.96 in; 0.92 low; 0.99 high


def _eval_report(rows: list[OutcomeRow], tmp_path: Path) -> EvalReport:
    """A real report to vary: ``router train`` on ``rows``, then eval on their test part."""
    path = write_rows(tmp_path / "one.jsonl", [orjson.loads(r.model_dump_json()) for r in rows])
    assert main(["router", "train", "--data", str(path), "--out", str(tmp_path / "r")]) == 0
    from commands.router_inputs import eval_input
    from processors.learning.evaluation import evaluate
    from sinks.router_artifact import load_router

    test = [row for row in rows if row.effective_split == "test"]
    return evaluate(eval_input(load_router(tmp_path / "r"), test))


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return orjson.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_each_split_is_what_train_and_eval_give_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Split 1 of a crossval run, written out with its splits and put through ``router
    train`` and ``router eval``, gives the same calibrated figures, plain and cascade."""
    rows = _rows(400, seed=5, responses=True)
    data = write_rows(tmp_path / "all.jsonl", [orjson.loads(r.model_dump_json()) for r in rows])
    args = ["router", "crossval", "--data", str(data), "--repeats", "2", "--seed", "7", "--json"]
    assert main(args) == 0
    summary = _json(capsys)
    assert summary["repeats"] == 2 and summary["rows"] == 400
    names = [tier["name"] for tier in summary["tiers"]]
    assert names == ["economy", "balanced", "premium"] + [
        f"cascade {t}" for t in ("economy", "balanced", "premium")
    ]
    second = resplit({"all": rows}, 1, seed=7, test_share=0.3)["all"]
    split_file = write_rows(
        tmp_path / "split1.jsonl", [orjson.loads(r.model_dump_json()) for r in second]
    )
    router = tmp_path / "router"
    assert main(["router", "train", "--data", str(split_file), "--out", str(router)]) == 0
    capsys.readouterr()
    assert (
        main(["router", "eval", "--router", str(router), "--data", str(split_file), "--json"]) == 0
    )
    report = _json(capsys)
    expected = report["calibrated"] + report["cascade"]["calibrated"]
    assert summary["test_rows"][1] == report["n"]
    for tier, one in zip(summary["tiers"], expected, strict=True):
        assert tier["quality_share"][1] == pytest.approx(one["quality_share"])
        assert tier["cost_share"][1] == pytest.approx(one["cost_share"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--repeats", "0"], "--repeats"),
        (["--test-share", "1.5"], "--test-share"),
        (["--tier-goals", "economy=2"], "--tier-goals"),
    ],
)
def test_bad_knobs_fail_clearly(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_rows(tmp_path / "d.jsonl", synthetic_rows(50, seed=1))
    assert main(["router", "crossval", "--data", str(data), *extra]) == 1
    assert message in capsys.readouterr().err
