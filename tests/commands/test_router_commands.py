"""``switchyard router train | eval | predict`` through ``commands.cli.main``."""

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from commands.cli import main
from tests.synthetic_outcomes import MODELS, synthetic_rows, write_rows

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "routing"
JSON_KEYS = {
    "n", "dropped", "aiq", "random_aiq", "zero_router_aiq", "oracle_aiq",
    "cost_at_95pct_strongest", "strongest_cost", "quality_at_strongest_cost",
    "strongest_quality", "oracle_quality", "baselines", "hull_check",
    "above_zero_router_20_80", "cpt_50", "cpt_80", "unknown_models",
}  # fmt: skip
BASELINES = {"always_cheapest", "always_strongest", "random", "zero_router", "oracle"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One plain file with a split field and one gzip file without (hash split)."""
    root = tmp_path_factory.mktemp("outcomes")
    plain = write_rows(root / "plain.jsonl", synthetic_rows(500, seed=1, with_split=True))
    packed = write_rows(root / "packed.data", synthetic_rows(400, seed=2), compress=True)
    return {"plain": plain, "gzip": packed, "root": root}


@pytest.fixture(scope="module")
def router(data: dict[str, Path]) -> Path:
    out = data["root"] / "router"
    assert (
        main(
            ["router", "train", "--data", str(data["plain"]), str(data["gzip"]), "--out", str(out)]
        )
        == 0
    )
    return out


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return orjson.loads(capsys.readouterr().out)


def test_train_writes_a_versioned_router(router: Path) -> None:
    version = (router / "CURRENT").read_text().strip()
    assert (router / version / "manifest.json").is_file()
    assert (router / version / "weights.npz").is_file()
    manifest = orjson.loads((router / version / "manifest.json").read_bytes())
    assert manifest["version"] == version
    assert sorted(m["name"] for m in manifest["models"]) == sorted(MODELS)
    assert set(manifest["row_counts"]) == {str(p) for p in manifest["row_counts"]}
    assert sum(c["train"] + c["test"] for c in manifest["row_counts"].values()) == 900


def test_eval_json_beats_the_zero_router(
    router: Path, data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    plot = data["root"] / "plot.png"
    files = [str(data["plain"]), str(data["gzip"])]
    assert (
        main(
            [
                "router",
                "eval",
                "--router",
                str(router),
                "--data",
                *files,
                "--json",
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    report = _json(capsys)
    assert JSON_KEYS <= set(report)
    assert set(report["baselines"]) == BASELINES
    for figures in report["baselines"].values():
        assert {"aiq", "cost_at_95pct_strongest", "quality_at_strongest_cost"} <= set(figures)
    assert report["n"] > 200 and report["dropped"] == 0
    assert report["above_zero_router_20_80"] is True
    assert report["aiq"] > report["zero_router_aiq"] >= report["random_aiq"]
    assert report["oracle_aiq"] > report["aiq"]
    assert report["cpt_50"] is None  # three models: CPT is a two-model figure
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_table(
    router: Path, data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["router", "eval", "--router", str(router), "--data", str(data["plain"])]) == 0
    out = capsys.readouterr().out
    for word in ("router", "zero_router", "oracle", "gamma-large", "above the zero-router"):
        assert word in out


@pytest.mark.parametrize(
    "how", [["--quality-target", "0.8"], ["--lambda", "0.5"], ["--lambda", "0"]]
)
def test_predict_one_line_per_test_prompt(
    router: Path, data: dict[str, Path], capsys: pytest.CaptureFixture[str], how: list[str]
) -> None:
    assert (
        main(["router", "predict", "--router", str(router), "--data", str(data["plain"]), *how])
        == 0
    )
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    test_ids = {
        r["id"] for r in synthetic_rows(500, seed=1, with_split=True) if r["split"] == "test"
    }
    assert len(lines) == len(test_ids) == 150
    assert {line["id"] for line in lines} == test_ids
    assert {line["model"] for line in lines} <= set(MODELS)
    if how == ["--lambda", "0"]:  # best predicted quality: mostly the large model
        assert sum(line["model"] == "gamma-large" for line in lines) > len(lines) / 2


@pytest.mark.parametrize(
    ("how", "message"),
    [(["--quality-target", "1.5"], "within 0 and 1"), (["--lambda", "-1"], "at least 0")],
)
def test_predict_checks_its_knob(
    router: Path,
    data: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    how: list[str],
    message: str,
) -> None:
    assert (
        main(["router", "predict", "--router", str(router), "--data", str(data["plain"]), *how])
        == 1
    )
    assert message in capsys.readouterr().err


def test_predict_takes_at_most_one_knob(
    router: Path, data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["router", "predict", "--router", str(router), "--data", str(data["plain"])]
    for extra in (
        ["--lambda", "1", "--quality-target", "0.5"],
        ["--tier", "economy", "--lambda", "1"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(base + extra)
        assert exit_.value.code == 2
    capsys.readouterr()
    assert main(base) == 0  # none: the balanced tier
    default = capsys.readouterr()
    assert "tier balanced" in default.err
    assert main([*base, "--tier", "balanced"]) == 0
    assert capsys.readouterr().out == default.out


def test_unknown_models_are_left_out_and_named(
    router: Path, data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rows = synthetic_rows(100, seed=3, with_split=True)
    for row in rows:
        row["outcomes"]["omega-new"] = {"score": 1.0, "cost_usd": 1e-6}
    path = write_rows(data["root"] / "extra.jsonl", rows)
    assert main(["router", "eval", "--router", str(router), "--data", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert orjson.loads(captured.out)["unknown_models"] == ["omega-new"]
    assert "omega-new" in captured.err


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, err


def test_bad_inputs_fail_clearly(
    router: Path, data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    _fails(
        ["router", "train", "--data", str(missing), "--out", str(tmp_path / "r")],
        capsys,
        str(missing),
        "cannot read",
    )
    lines = data["plain"].read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*lines[:2], "{not json", *lines[3:]]) + "\n")
    _fails(
        ["router", "eval", "--router", str(router), "--data", str(broken)],
        capsys,
        f"{broken}:3",
        "not JSON",
    )
    invalid = tmp_path / "invalid.jsonl.gz"
    row = synthetic_rows(1)[0]
    row["outcomes"]["alpha-small"]["score"] = 2
    invalid.write_bytes(gzip.compress(orjson.dumps(row) + b"\n"))
    _fails(
        ["router", "train", "--data", str(invalid), "--out", str(tmp_path / "r")],
        capsys,
        f"{invalid}:1",
        "outcomes.alpha-small.score",
    )
    train_only = write_rows(
        tmp_path / "train.jsonl", [{**r, "split": "train"} for r in synthetic_rows(20)]
    )
    _fails(
        ["router", "eval", "--router", str(router), "--data", str(train_only)],
        capsys,
        "no test rows",
    )
    test_only = write_rows(
        tmp_path / "test.jsonl", [{**r, "split": "test"} for r in synthetic_rows(20)]
    )
    _fails(
        ["router", "train", "--data", str(test_only), "--out", str(tmp_path / "r")],
        capsys,
        "no train rows",
    )
    _fails(
        ["router", "eval", "--router", str(tmp_path / "nowhere"), "--data", str(test_only)],
        capsys,
        "not a router directory",
    )
    twice = tmp_path / "twice.jsonl"
    twice.write_text(lines[0] + "\n" + lines[0] + "\n")
    _fails(
        ["router", "train", "--data", str(twice), "--out", str(tmp_path / "r")],
        capsys,
        f"{twice}:2",
        "already seen",
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mmlu", "gsm8k"])
def test_shared_outcome_files(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = SHARED / f"routellm-{name}.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared data folder sits next to the repository)")
    assert main(["router", "train", "--data", str(path), "--out", str(tmp_path / "r")]) == 0
    assert (
        main(["router", "eval", "--router", str(tmp_path / "r"), "--data", str(path), "--json"])
        == 0
    )
    report = orjson.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["above_zero_router_20_80"] is True
    assert report["aiq"] > report["zero_router_aiq"]
    assert report["settings_below_zero_router_20_80"] == 0
    # Settings chosen on train, measured on test: every tier within 2 points of its goal.
    tiers = {c["name"]: c for c in report["calibrated"]}
    assert set(tiers) == {"economy", "balanced", "premium"}
    for tier in tiers.values():
        assert tier["within_2_points"], tier
    if name == "mmlu":
        assert report["cost_at_95pct_strongest"] <= 0.5 * report["strongest_cost"]
        assert report["cascade"] is None  # MMLU carries no answers
        assert tiers["balanced"]["quality_share"] >= 0.95
        assert tiers["balanced"]["cost_share"] <= 0.35
    else:
        cascade = report["cascade"]
        assert cascade["check_auc"]["mixtral-8x7b-instruct"] > 0.7
        assert cascade["settings_below_zero_router_20_80"] == 0
