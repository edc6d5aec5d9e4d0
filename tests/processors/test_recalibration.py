"""Refitting a router from feedback: intercept shifts, prior updates, models added."""

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from processors.learning.quality_model import QualityModel, RouterArrays
from processors.learning.recalibration import (
    Judgement,
    RefitSettings,
    intercept_shift,
    refit_from_feedback,
)
from processors.learning.training import train_router
from schemas.outcomes import OutcomeRow
from schemas.router_artifact import RouterManifest
from tests.synthetic_outcomes import synthetic_rows

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)
PROMPT = "w1 w2 w3 integral hello"


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@pytest.fixture(scope="module")
def trained() -> tuple[RouterManifest, RouterArrays]:
    rows = [OutcomeRow.model_validate(r) for r in synthetic_rows(300, seed=5)]
    manifest, arrays = train_router({"synthetic": rows}, NOW)
    return manifest.model_copy(update={"version": "base-1"}), arrays


@pytest.mark.parametrize("true_shift", [-1.2, 0.0, 0.8])
def test_shift_recovers_a_planted_bias(true_shift: float) -> None:
    rnd = random.Random(3)
    logits = [rnd.uniform(-2, 2) for _ in range(4000)]
    predicted = [_sigmoid(z) for z in logits]
    values = [float(rnd.random() < _sigmoid(z + true_shift)) for z in logits]
    assert intercept_shift(predicted, values, prior_sd=1.0) == pytest.approx(true_shift, abs=0.12)


def test_few_judgements_move_the_shift_little() -> None:
    # Three thumbs-down against predictions of 0.9: the unregularised fit runs
    # to minus infinity; the prior keeps it finite and small.
    few = intercept_shift([0.9, 0.9, 0.9], [0.0, 0.0, 0.0], prior_sd=1.0)
    many = intercept_shift([0.9] * 300, [0.0] * 300, prior_sd=1.0)
    assert -2.0 < few < 0 and many < few - 2
    assert intercept_shift([], [], prior_sd=1.0) == 0.0


def test_soft_labels_fit_their_mean() -> None:
    # Scores of 0.5 against predictions of 0.5: nothing to correct.
    assert intercept_shift([0.5] * 50, [0.5] * 50, prior_sd=1.0) == pytest.approx(0.0, abs=1e-9)


def test_refit_shifts_the_learned_model_toward_feedback(
    trained: tuple[RouterManifest, RouterArrays],
) -> None:
    manifest, arrays = trained
    base = QualityModel(manifest, arrays)
    before = base.predict(PROMPT, "algebra")["beta-mid"]
    # Production says beta-mid is much worse than predicted on the traffic it got.
    judged = [Judgement("beta-mid", "algebra", float(i % 5 == 0), before, 1e-4) for i in range(200)]
    refit = refit_from_feedback(manifest, arrays, judged, NOW, SINCE)
    after = QualityModel(refit.manifest, refit.arrays).predict(PROMPT, "algebra")

    (report,) = refit.models
    assert report.shift < -1.0 and report.calibrated_rows == 200
    assert after["beta-mid"] < before - 0.2
    assert after["beta-mid"] == pytest.approx(
        _sigmoid(math.log(before / (1 - before)) + report.shift)
    )
    # Other models and the shared featuriser are untouched.
    assert after["gamma-large"] == pytest.approx(base.predict(PROMPT, "algebra")["gamma-large"])
    assert np.array_equal(refit.arrays.coef, arrays.coef)
    (applied,) = refit.manifest.feedback
    assert applied.base_version == "base-1" and applied.judgements == 200
    assert applied.intercept_shifts == {"beta-mid": pytest.approx(report.shift)}
    assert refit.manifest.version == "" and refit.manifest.created_at == NOW


def test_predictions_of_another_version_update_priors_only(
    trained: tuple[RouterManifest, RouterArrays],
) -> None:
    manifest, arrays = trained
    judged = [Judgement("beta-mid", "poetry", 0.0, None, 1e-4) for _ in range(100)]
    refit = refit_from_feedback(manifest, arrays, judged, NOW, SINCE)

    assert np.array_equal(refit.arrays.intercept, arrays.intercept)
    assert refit.manifest.feedback[0].intercept_shifts == {}
    pseudo = manifest.prior_pseudo_rows
    expected = manifest.priors["beta-mid"]["poetry"] * pseudo / (pseudo + 100)
    assert refit.manifest.priors["beta-mid"]["poetry"] == pytest.approx(expected)
    assert refit.manifest.priors["beta-mid"]["algebra"] == manifest.priors["beta-mid"]["algebra"]


def test_an_unknown_model_is_added_only_with_enough_judgements(
    trained: tuple[RouterManifest, RouterArrays],
) -> None:
    manifest, arrays = trained
    judged = [Judgement("new-model", "trivia", float(i % 4 != 0), None, 2e-4) for i in range(40)]
    judged += [Judgement("rare-model", "trivia", 1.0, None, 1e-4) for _ in range(5)]
    refit = refit_from_feedback(manifest, arrays, judged, NOW, SINCE, RefitSettings(min_rows=30))
    model = QualityModel(refit.manifest, refit.arrays)

    assert model.knows("new-model") and not model.knows("rare-model")
    fit = refit.manifest.fit_for("new-model")
    assert fit is not None and fit.kind == "prior" and fit.mean_score == pytest.approx(0.75)
    assert model.predict(PROMPT, "trivia")["new-model"] == pytest.approx(0.75)
    cost = dict(zip(model.models, model.predict_cost_batch([1000])[0], strict=True))
    assert cost["new-model"] == pytest.approx(2e-4)
    actions = {r.model: r.action for r in refit.models}
    assert actions == {
        "new-model": "added (prior only)",
        "rare-model": "unknown model, too few rows",
    }


def test_refits_stack_and_bad_input_is_refused(
    trained: tuple[RouterManifest, RouterArrays],
) -> None:
    manifest, arrays = trained
    judged = [Judgement("alpha-small", "trivia", 1.0, 0.5, 1e-5) for _ in range(50)]
    once = refit_from_feedback(manifest, arrays, judged, NOW, SINCE)
    twice = refit_from_feedback(once.manifest, once.arrays, judged, NOW, SINCE)
    assert len(twice.manifest.feedback) == 2
    with pytest.raises(ValueError, match="no feedback"):
        refit_from_feedback(manifest, arrays, [], NOW, SINCE)
    with pytest.raises(ValueError, match="outside"):
        refit_from_feedback(manifest, arrays, [Judgement("x", "t", 1.5, None, 0)], NOW, SINCE)
