"""``router train | eval | predict --cascade`` on outcome files with responses."""

from pathlib import Path
from typing import Any

import orjson
import pytest

from commands.cli import main
from tests.synthetic_outcomes import synthetic_rows, write_rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("cascade")
    rows = synthetic_rows(900, seed=21, with_split=True, responses=True)
    data = write_rows(root / "answers.jsonl", rows)
    out = root / "router"
    assert main(["router", "train", "--data", str(data), "--out", str(out)]) == 0
    return data, out, rows


def test_train_fits_checks_for_every_model_but_the_strongest(
    trained: tuple[Path, Path, list[dict[str, Any]]],
) -> None:
    _, out, _ = trained
    version = (out / "CURRENT").read_text().strip()
    manifest = orjson.loads((out / version / "manifest.json").read_bytes())
    checks = {v["model"]: v for v in manifest["checks"]["verifiers"]}
    assert set(checks) == {"alpha-small", "beta-mid"}  # gamma-large is the strongest
    for fit in checks.values():
        assert fit["oof_auc"] > 0.6  # the planted arithmetic slips are learnable
        assert fit["cv_log_loss"] < fit["cv_mean_log_loss"]
    assert set(manifest["cascade"]["tiers"]) == {"economy", "balanced", "premium"}


def test_predict_cascade_lines_add_up_to_what_eval_reports(
    trained: tuple[Path, Path, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    data, out, rows = trained
    assert main(["router", "eval", "--router", str(out), "--data", str(data), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    cascade = report["cascade"]
    assert cascade is not None and cascade["settings_20_80"] > 0
    by_id = {row["id"]: row for row in rows}
    strongest = report["strongest_model"]
    for result in cascade["calibrated"]:
        tier = result["name"]
        argv = ["router", "predict", "--router", str(out), "--data", str(data), "--cascade"]
        assert main([*argv, "--tier", tier]) == 0
        lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(lines) == report["n"]
        got = sum(by_id[x["id"]]["outcomes"][x["model"]]["score"] for x in lines)
        paid = sum(by_id[x["id"]]["outcomes"][m]["cost_usd"] for x in lines for m in x["called"])
        top = sum(by_id[x["id"]]["outcomes"][strongest]["score"] for x in lines)
        top_cost = sum(by_id[x["id"]]["outcomes"][strongest]["cost_usd"] for x in lines)
        assert got / top == pytest.approx(result["quality_share"], abs=1e-9), tier
        assert paid / top_cost == pytest.approx(result["cost_share"], abs=1e-9), tier
        for x in lines:
            assert x["model"] == x["called"][-1] and 1 <= len(x["called"]) <= 2
        escalated = sum(len(x["called"]) == 2 for x in lines) / len(lines)
        assert escalated == pytest.approx(cascade["escalated_share"][tier])


def test_without_responses_there_is_no_cascade_and_it_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_rows(tmp_path / "plain.jsonl", synthetic_rows(200, seed=3, with_split=True))
    out = tmp_path / "router"
    assert main(["router", "train", "--data", str(data), "--out", str(out)]) == 0
    assert "no responses in the data" in capsys.readouterr().out
    argv = ["router", "predict", "--router", str(out), "--data", str(data), "--cascade"]
    assert main(argv) == 2
    assert "no learned checks" in capsys.readouterr().err


def test_the_live_cascade_makes_the_offline_calls(
    trained: tuple[Path, Path, list[dict[str, Any]]],
) -> None:
    """Catalogue priced like the data: the cascade strategy's ladder and threshold, with
    the check's P(good) of the first rung's answer, call what predict --cascade calls."""
    from commands.router_inputs import cascade_calls
    from processors.strategies import Cascade, Learned, StrategyInput
    from schemas.outcomes import OutcomeRow
    from sinks.router_artifact import load_router
    from tests.helpers import make_request, verdict

    _, out, rows = trained
    model = load_router(out)
    assert model.cascade_calibration is not None and model.verifier is not None
    tests = [OutcomeRow.model_validate(r) for r in rows if r["split"] == "test"][:120]
    names = model.models
    quality = model.predict_batch([r.prompt for r in tests], [r.task for r in tests])
    cost = model.predict_cost_batch([len(r.prompt) for r in tests])
    strategy = Cascade(2, Learned(model, {}))
    for tier in ("economy", "balanced", "premium"):
        lam = model.cascade_calibration.tiers[tier].lam
        offline = cascade_calls(model, tests, names, quality, cost, lam)
        for i, row in enumerate(tests):
            inp = StrategyInput(
                request=make_request(row.prompt),
                text=row.prompt,
                task=row.task,
                quality=tier,  # type: ignore[arg-type]
                target=0.0,
                verdicts=[verdict(m, float(cost[i, j]), 0.5) for j, m in enumerate(names)],
                max_fallbacks=2,
            )
            choice = strategy.choose(inp)
            assert choice is not None
            assert choice.chosen.model == names[offline[i][0]], (tier, i)
            if not choice.cascade:
                assert len(offline[i]) == 1
                continue
            assert choice.check is not None and choice.check.kind == "learned"
            assert choice.check.threshold is not None
            first = choice.cascade[0]
            answer = row.outcomes[first].response or ""
            p_good = model.verifier.probability(first, row.prompt, row.task, answer)
            escalates = p_good < choice.check.threshold
            assert escalates == (len(offline[i]) == 2), (tier, i)
            if escalates:
                assert choice.cascade[1] == names[offline[i][1]]
