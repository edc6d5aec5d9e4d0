"""``switchyard router train --from-telemetry`` over the embedded ClickHouse, through ``cli.main``.

Telemetry holds decisions routed by a trained router (its logged predictions
and version) and feedback on them; the command must read the joins, keep only
what the rules say (answered, uncached, in the window, the router's own
predictions for the shift) and write a new router version that predicts
what the feedback says.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from commands.cli import main
from commands.whatif import with_router
from processors.learning.recalibration import Judgement, intercept_shift, refit_from_feedback
from processors.learning.training import train_router
from schemas.config_file import load_config
from schemas.feedback import Feedback
from schemas.outcomes import OutcomeRow
from schemas.telemetry import TelemetryEvent
from sinks.clickhouse import TelemetrySink
from sinks.router_artifact import load_router, save_router
from streams.workers.route_state import load_learned, reload_learned
from tests.helpers import SAMPLE_CONFIG, request_row
from tests.synthetic_outcomes import synthetic_rows

NOW = datetime.now(UTC)
PROMPT = "w1 w2 w3 integral hello"


@pytest.fixture
def telemetry(
    cli_telemetry: TelemetrySink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> TelemetrySink:
    """The CLI's database, with a config that aliases sim-small to the router's beta-mid."""
    config = tmp_path / "switchyard.yaml"
    text = SAMPLE_CONFIG.read_text()
    assert text.count("  max_fallbacks: 2\n") == 1
    config.write_text(
        text.replace(
            "  max_fallbacks: 2\n",
            "  max_fallbacks: 2\n  learned:\n    aliases: {sim-small: beta-mid}\n",
        )
    )
    monkeypatch.setenv("SWITCHYARD_CONFIG", str(config))
    return cli_telemetry


@pytest.fixture
def router_dir(tmp_path: Path) -> Path:
    rows = [OutcomeRow.model_validate(r) for r in synthetic_rows(300, seed=5)]
    manifest, arrays = train_router({"synthetic": rows}, NOW - timedelta(days=1))
    directory = tmp_path / "router"
    save_router(directory, manifest, arrays)
    return directory


def _judged(
    sink: TelemetrySink, request_id: str, value: float, ago: timedelta, **decision: Any
) -> None:
    row = request_row(request_id, NOW - ago, **({"task": "algebra"} | decision))
    sink.add(TelemetryEvent(request=row))
    sink.add(Feedback(request_id=request_id, tenant=row.tenant, kind="thumbs", value=value, at=NOW))


def test_feedback_refits_the_router_it_judged(
    telemetry: TelemetrySink, router_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = load_router(router_dir)
    predicted = base.predict(PROMPT, "algebra")["beta-mid"]
    mine = {"model": "sim-small", "router_version": base.version}
    hour = timedelta(hours=1)
    # sim-small (beta-mid to the router) disappoints: 1 in 5 thumbs up.
    for i in range(60):
        _judged(telemetry, f"r-{i}", float(i % 5 == 0), hour, predicted_quality=predicted, **mine)
    # Not counted: old, failed, a cache hit, and thumbs up on them all.
    _judged(telemetry, "old", 1.0, timedelta(days=60), predicted_quality=predicted, **mine)
    _judged(telemetry, "failed", 1.0, hour, status="error", predicted_quality=predicted, **mine)
    _judged(telemetry, "hit", 1.0, hour, cache="hit", predicted_quality=predicted, **mine)
    # Another router's predictions: priors only, never the shift.
    for i in range(40):
        _judged(telemetry, f"o-{i}", 1.0, hour, model="sim-small", router_version="other",
                predicted_quality=0.5, task="poetry")  # fmt: skip
    telemetry.flush()

    assert main(["router", "train", "--from-telemetry", "--router", str(router_dir)]) == 0

    refit = load_router(router_dir)  # CURRENT moved to the new version
    assert refit.version != base.version
    (applied,) = refit.manifest.feedback
    assert applied.base_version == base.version and applied.judgements == 100
    # Exactly the 60 judgements of this router's own predictions set the shift.
    own = [float(i % 5 == 0) for i in range(60)]
    expected = intercept_shift([predicted] * 60, own, prior_sd=1.0)
    assert expected < -1.0
    assert applied.intercept_shifts["beta-mid"] == pytest.approx(expected, abs=1e-3)
    after = refit.predict(PROMPT, "algebra")
    assert after["beta-mid"] < predicted - 0.2
    assert after["gamma-large"] == pytest.approx(base.predict(PROMPT, "algebra")["gamma-large"])
    assert refit.manifest.priors["beta-mid"]["poetry"] > base.manifest.priors["beta-mid"]["poetry"]
    assert (
        refit.manifest.priors["beta-mid"]["algebra"] < base.manifest.priors["beta-mid"]["algebra"]
    )
    out = capsys.readouterr().out
    assert f"refit of {base.version}" in out and "intercept shifted" in out


def test_no_feedback_is_a_clear_error(
    telemetry: TelemetrySink, router_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["router", "train", "--from-telemetry", "--router", str(router_dir)]) == 1
    assert "no judged requests" in capsys.readouterr().err
    assert main(["router", "train", "--from-telemetry"]) != 0
    assert "needs --router" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_routers_pick_up_a_new_current_version_and_survive_a_bad_one(
    router_dir: Path,
) -> None:
    config = with_router(load_config(SAMPLE_CONFIG), router_dir)
    learned = load_learned(config)
    assert await reload_learned(config, learned) is None  # nothing new

    model = load_router(router_dir)
    judged = [Judgement("beta-mid", "algebra", 0.0, 0.5, 1e-4) for _ in range(40)]
    refit = refit_from_feedback(model.manifest, model.arrays, judged, NOW, NOW - timedelta(days=1))
    newer = save_router(router_dir, refit.manifest, refit.arrays)
    reloaded = await reload_learned(config, learned)
    assert reloaded is not None and reloaded.version == newer.name != learned.version

    (router_dir / "CURRENT").write_text("20990101T000000Z-deadbeef\n")  # names nothing
    assert await reload_learned(config, reloaded) is None
