"""Featurizer, choice rules, training and the quality model, without files."""

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from processors.learning.featurize import Featurizer, fit_featurizer
from processors.learning.quality_model import (
    QualityModel,
    choose_for_lambda,
    choose_for_lambda_batch,
    choose_for_target,
    choose_for_target_batch,
)
from processors.learning.training import train_router
from schemas.errors import TrainingError
from schemas.outcomes import OutcomeRow
from schemas.router_artifact import FeaturizerParams
from tests.synthetic_outcomes import synthetic_rows

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TEXTS = [
    "Natalia sold clips to 48 of her friends in April.\nHow many clips did she sell?",
    "Find the degree of the field extension Q(sqrt(2), sqrt(3)) over Q.",
    "Écris un poème très court sur la mer.",
    "",
]


@pytest.fixture(scope="module")
def featurizer() -> Featurizer:
    params, idf = fit_featurizer(FeaturizerParams(dim=2**12), TEXTS)
    return Featurizer(params, idf)


def test_same_input_same_vector_whatever_the_cache(featurizer: Featurizer) -> None:
    fresh = Featurizer(featurizer.params, featurizer.idf)
    for text in TEXTS:
        first = featurizer.transform_one(text, "math")
        again = featurizer.transform_one(text, "math")
        other = fresh.transform_one(text, "math")
        for a, b in ((first, again), (first, other)):
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_vector_layout(featurizer: Featurizer) -> None:
    dim = featurizer.params.dim
    indices, values = featurizer.transform_one(TEXTS[0], "gsm8k")
    assert indices.max() < featurizer.params.width
    # Dense features sit in the last four columns, the task token in the hashed part.
    assert list(indices[-4:]) == list(range(dim, dim + 4))
    assert indices[-5] == featurizer.task_column("gsm8k") and values[-5] == 1.0
    text_part = values[:-5]
    assert np.all(text_part > 0)
    assert float(text_part @ text_part) == pytest.approx(1.0)  # two blocks of norm 1/sqrt(2)
    other = featurizer.transform_one(TEXTS[0], "mmlu/algebra")
    assert other[0][-5] != indices[-5]


def test_empty_prompt_has_task_and_dense_only(featurizer: Featurizer) -> None:
    indices, values = featurizer.transform_one("", "t")
    assert len(indices) == 5
    assert np.all(np.isfinite(values))


def test_batch_matches_one_by_one(featurizer: Featurizer) -> None:
    matrix = featurizer.transform(TEXTS, ["a", "b", "c", "d"])
    assert matrix.shape == (4, featurizer.params.width)
    for row, (text, task) in enumerate(zip(TEXTS, "abcd", strict=True)):
        indices, values = featurizer.transform_one(text, task)
        dense = np.zeros(featurizer.params.width)
        np.add.at(dense, indices, values)
        assert np.allclose(matrix[row].toarray()[0], dense)


def test_idf_down_weights_common_ngrams() -> None:
    params, idf = fit_featurizer(FeaturizerParams(dim=2**12), ["the cat", "the dog", "the cow"])
    raw = Featurizer(params).hashed_counts("the")
    rare = Featurizer(params).hashed_counts("cow")
    assert idf[raw.word_ids].max() < idf[rare.word_ids].min()
    assert params.idf_documents == 3


def test_long_prompts_are_clipped() -> None:
    params, idf = fit_featurizer(FeaturizerParams(dim=2**12, max_chars=100), ["x"])
    featurizer = Featurizer(params, idf)
    long = "alpha " * 1000
    assert featurizer.hashed_counts(long).word_counts.sum() < 40


QUALITY = {"small": 0.6, "mid": 0.8, "large": 0.9}
COST = {"small": 1.0, "mid": 3.0, "large": 10.0}


def test_target_takes_the_cheapest_model_that_reaches_it() -> None:
    assert choose_for_target(QUALITY, COST, 0.0) == "small"
    assert choose_for_target(QUALITY, COST, 0.75) == "mid"
    assert choose_for_target(QUALITY, COST, 0.9) == "large"
    # Nobody reaches it: the best predicted quality.
    assert choose_for_target(QUALITY, COST, 0.95) == "large"


def test_lambda_prices_quality_in_reference_calls() -> None:
    assert choose_for_lambda(QUALITY, COST, 0.0, 10.0) == "large"
    # mid - large: -0.1 quality for 7/10 of a reference call saved.
    assert choose_for_lambda(QUALITY, COST, 0.2, 10.0) == "mid"
    assert choose_for_lambda(QUALITY, COST, 100.0, 10.0) == "small"


def test_ties_go_to_the_cheaper_then_the_smaller_name() -> None:
    same = {"b": 0.8, "a": 0.8, "c": 0.8}
    assert choose_for_lambda(same, {"a": 2.0, "b": 1.0, "c": 1.0}, 0.0, 1.0) == "b"
    assert choose_for_target(same, {"a": 1.0, "b": 1.0, "c": 1.0}, 0.5) == "a"
    assert choose_for_target(same, {"a": 1.0, "b": 1.0, "c": 0.5}, 0.9) == "c"


def test_choice_errors() -> None:
    with pytest.raises(ValueError, match="no cost for large"):
        choose_for_target(QUALITY, {"small": 1.0, "mid": 1.0}, 0.5)
    with pytest.raises(ValueError, match="lam"):
        choose_for_lambda(QUALITY, COST, -1.0, 1.0)
    with pytest.raises(ValueError, match="no models"):
        choose_for_target({}, {}, 0.5)


def test_batch_choices_match_the_scalar_rules() -> None:
    rnd = random.Random(3)
    names = ["a", "b", "c"]
    # Coarse values so that ties in quality, cost and utility happen often.
    quality = np.array([[rnd.choice([0.2, 0.5, 0.8]) for _ in names] for _ in range(300)])
    cost = np.array([[rnd.choice([1.0, 2.0, 4.0]) for _ in names] for _ in range(300)])
    for lam in (0.0, 0.25, 1.0, 8.0):
        chosen = choose_for_lambda_batch(quality, cost, lam, 2.0)
        for row in range(len(quality)):
            q, c = (
                dict(zip(names, quality[row], strict=True)),
                dict(zip(names, cost[row], strict=True)),
            )
            assert names[chosen[row]] == choose_for_lambda(q, c, lam, 2.0)
    for target in (0.0, 0.5, 0.6, 0.9):
        chosen = choose_for_target_batch(quality, cost, target)
        for row in range(len(quality)):
            q, c = (
                dict(zip(names, quality[row], strict=True)),
                dict(zip(names, cost[row], strict=True)),
            )
            assert names[chosen[row]] == choose_for_target(q, c, target)


@pytest.fixture(scope="module")
def trained() -> QualityModel:
    rows = [OutcomeRow.model_validate(r) for r in synthetic_rows(700, seed=11)]
    # A fourth model with too few rows: it must get a prior, not a classifier.
    rare = [
        r.model_copy(update={"outcomes": {**r.outcomes, "delta-rare": r.outcomes["beta-mid"]}})
        for r in rows[:15]
    ]
    manifest, arrays = train_router({"synthetic": rare + rows[15:]}, NOW)
    return QualityModel(manifest, arrays)


def test_training_learns_the_planted_signal(trained: QualityModel) -> None:
    assert trained.models == ["alpha-small", "beta-mid", "delta-rare", "gamma-large"]
    fits = {fit.name: fit for fit in trained.manifest.models}
    assert fits["delta-rare"].kind == "prior"
    assert "train rows" in fits["delta-rare"].reason
    for name in ("alpha-small", "beta-mid", "gamma-large"):
        fit = fits[name]
        assert fit.kind == "learned" and fit.c in trained.manifest.c_grid
        assert fit.cv_log_loss is not None and fit.cv_prior_log_loss is not None
        assert fit.cv_log_loss < fit.cv_prior_log_loss
    easy = trained.predict("hello simple list w1 w2 w3", "poetry")
    hard = trained.predict("integral eigenvalue proof lemma w1 w2", "algebra")
    assert easy["alpha-small"] > 0.7 > hard["alpha-small"]
    assert hard["gamma-large"] > hard["beta-mid"] > hard["alpha-small"]
    assert trained.knows("delta-rare") and not trained.knows("omega")
    assert easy["delta-rare"] == trained.prior("delta-rare", "poetry")


def test_batch_prediction_matches_single(trained: QualityModel) -> None:
    texts, tasks = ["integral w5 w6", "hello w7"], ["algebra", "unseen-task"]
    batch = trained.predict_batch(texts, tasks)
    for row, (text, task) in enumerate(zip(texts, tasks, strict=True)):
        single = trained.predict(text, task)
        assert batch[row] == pytest.approx([single[m] for m in trained.models])


def test_reference_and_cost_model(trained: QualityModel) -> None:
    manifest = trained.manifest
    assert manifest.reference_model == "gamma-large"
    cost = dict(zip(trained.models, trained.predict_cost_batch([200])[0], strict=True))
    # Planted: 1e-3 + 1e-6 per char for gamma, 1e-5 + 1e-8 per char for alpha.
    assert cost["gamma-large"] == pytest.approx(1e-3 + 200e-6, rel=1e-3)
    assert cost["alpha-small"] == pytest.approx(1e-5 + 200e-8, rel=1e-3)
    assert trained.reference_cost == pytest.approx(manifest.cost_models["gamma-large"].mean_usd)
    assert (
        manifest.row_counts["synthetic"]["train"] + manifest.row_counts["synthetic"]["test"] == 700
    )


def test_training_needs_train_rows() -> None:
    rows = [OutcomeRow.model_validate({**r, "split": "test"}) for r in synthetic_rows(5)]
    with pytest.raises(TrainingError, match="no train rows"):
        train_router({"f": rows}, NOW)


def test_one_class_model_gets_its_prior() -> None:
    raw = synthetic_rows(60, seed=5, fractional=False)
    for row in raw:
        row["outcomes"]["always-right"] = {"score": 1.0, "cost_usd": 0.5}
    manifest, _ = train_router({"f": [OutcomeRow.model_validate(r) for r in raw]}, NOW)
    fit = manifest.fit_for("always-right")
    assert fit is not None and fit.kind == "prior" and fit.reason == "one class only"
    assert manifest.reference_model == "always-right"


def test_a_primed_batch_predicts_exactly_what_single_prompts_do(trained: QualityModel) -> None:
    texts = ["integral w5 w6", "hello w7\nw8", "", "x", "integral w5 w6", "proof " * 40]
    single = [trained.predict(text, task) for text, task in zip(texts, TASKS6, strict=True)]
    trained.prime(texts)
    primed = [trained.predict(text, task) for text, task in zip(texts, TASKS6, strict=True)]
    for a, b in zip(single, primed, strict=True):
        assert a.keys() == b.keys()
        for model in a:
            assert a[model] == pytest.approx(b[model], abs=1e-12)
    # Only the last batch is kept; an unprimed prompt is featurised as before.
    trained.prime(["something else"])
    assert trained.predict("hello w7\nw8", "poetry") == pytest.approx(single[1])


TASKS6 = ["algebra", "poetry", "trivia", "unseen", "poetry", "algebra"]
