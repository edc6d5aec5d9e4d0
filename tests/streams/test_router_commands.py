"""`switchyard router train | eval | predict` on data the project has never seen."""

from pathlib import Path

import orjson
import pytest

from streams.cli import main
from tests.routing_data import MODELS, synthetic_rows, write_rows

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "routing"


def test_train_eval_predict_on_an_unseen_three_model_data_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = synthetic_rows(500)
    plain = write_rows(tmp_path / "a.jsonl", rows[:250])
    zipped = write_rows(tmp_path / "b.data", rows[250:], gzipped=True)  # told apart by content
    router = tmp_path / "router"
    assert main(["router", "train", "--data", str(plain), str(zipped), "--out", str(router)]) == 0
    assert (router / "manifest.json").exists() and (router / "weights.npz").exists()
    capsys.readouterr()

    plot = tmp_path / "curve.png"
    argv = ["router", "eval", "--router", str(router), "--data", str(plain), str(zipped)]
    assert main([*argv, "--json", "--plot", str(plot)]) == 0
    report = orjson.loads(capsys.readouterr().out)
    for key in ("n", "aiq", "random_aiq", "cost_at_95pct_strongest", "strongest_cost",
                "quality_at_strongest_cost", "strongest_quality", "oracle_quality"):  # fmt: skip
        assert key in report
    assert set(report["baselines"]) >= {"always_cheapest", "always_strongest", "random",
                                        "zero_router", "oracle"}  # fmt: skip
    assert report["strongest"] == "gamma-large"
    assert report["above_zero_router_20_80"] is True
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main(["router", "predict", "--router", str(router), "--data", str(zipped),
                 "--quality-target", "0.8"]) == 0  # fmt: skip
    lines = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    test_ids = {r["id"] for r in rows[250:] if _split(r) == "test"}
    assert {x["id"] for x in lines} == test_ids
    assert {x["model"] for x in lines} <= set(MODELS)
    # Easy prompts go to the small model, hard ones do not.
    by_id = {r["id"]: r for r in rows}
    hard = [x["model"] for x in lines if str(by_id[x["id"]]["prompt"]).startswith("hard")]
    easy = [x["model"] for x in lines if str(by_id[x["id"]]["prompt"]).startswith("easy")]
    assert "alpha-small" not in hard and easy.count("alpha-small") > len(easy) / 2

    assert main(["router", "predict", "--router", str(router), "--data", str(plain),
                 "--lambda", "0"]) == 0  # fmt: skip
    chosen = [orjson.loads(x)["model"] for x in capsys.readouterr().out.splitlines()]
    assert chosen and set(chosen) <= set(MODELS)


def _split(row: dict[str, object]) -> str:
    from schemas.outcomes import OutcomeRow

    return OutcomeRow.model_validate(row).effective_split


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["router", "train", "--data", str(missing), "--out", str(tmp_path / "r")]) == 1
    assert "missing.jsonl" in capsys.readouterr().err

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x", "prompt": "p", "task": "t", "outcomes": {}}\n{"id": 1}\n')
    assert main(["router", "train", "--data", str(broken), "--out", str(tmp_path / "r")]) == 1
    assert "broken.jsonl:2" in capsys.readouterr().err

    assert main(["router", "eval", "--router", str(tmp_path / "nope"), "--data", str(broken)]) == 1
    assert "not a router" in capsys.readouterr().err

    with pytest.raises(SystemExit):  # exactly one of --quality-target / --lambda
        main(["router", "predict", "--router", "r", "--data", str(broken)])


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.exists(), reason="shared routing data not present")
def test_shared_data_sets_meet_the_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = {}
    for name in ("gsm8k", "mmlu"):
        data = str(SHARED / f"routellm-{name}.jsonl.gz")
        router = tmp_path / name
        assert main(["router", "train", "--data", data, "--out", str(router)]) == 0
        capsys.readouterr()
        assert main(["router", "eval", "--router", str(router), "--data", data, "--json"]) == 0
        results[name] = orjson.loads(capsys.readouterr().out)
    for name, report in results.items():
        assert report["above_zero_router_20_80"] is True, name
        assert report["aiq"] > report["zero_router_aiq"], name
    assert results["mmlu"]["cost_fraction_at_95pct_strongest"] <= 0.5
