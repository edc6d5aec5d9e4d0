"""Saving and loading a router directory: versions, the CURRENT pointer, clear failures."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from processors.learning.quality_model import QualityModel, RouterArrays
from processors.learning.training import train_router
from schemas.errors import RouterArtifactError
from schemas.outcomes import OutcomeRow
from schemas.router_artifact import RouterManifest
from sinks.router_artifact import load_router, save_router
from tests.synthetic_outcomes import synthetic_rows

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def trained() -> tuple[RouterManifest, RouterArrays]:
    rows = [OutcomeRow.model_validate(r) for r in synthetic_rows(200, seed=4)]
    return train_router({"synthetic": rows}, NOW)


def test_round_trip_predicts_the_same(
    trained: tuple[RouterManifest, RouterArrays], tmp_path: Path
) -> None:
    manifest, arrays = trained
    version = save_router(tmp_path, manifest, arrays)
    assert (tmp_path / "CURRENT").read_text().strip() == version.name
    assert version.name.startswith("20261123T120000Z-")
    loaded = load_router(tmp_path)
    assert loaded.version == version.name
    assert loaded.models == [fit.name for fit in manifest.models]
    text, task = "integral proof w1 w2", "algebra"
    direct = QualityModel(manifest, arrays).predict(text, task)
    assert loaded.predict(text, task) == pytest.approx(direct)
    # A version directory loads on its own too.
    assert load_router(version).version == version.name


def test_a_new_version_becomes_current_and_the_old_one_stays(
    trained: tuple[RouterManifest, RouterArrays], tmp_path: Path
) -> None:
    manifest, arrays = trained
    first = save_router(tmp_path, manifest, arrays)
    later = manifest.model_copy(update={"created_at": NOW + timedelta(hours=1)})
    second = save_router(tmp_path, later, arrays)
    assert first.is_dir() and second.is_dir() and first != second
    assert load_router(tmp_path).version == second.name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_missing_corrupt_and_incompatible_artifacts(
    trained: tuple[RouterManifest, RouterArrays], tmp_path: Path
) -> None:
    with pytest.raises(RouterArtifactError, match="does not exist"):
        load_router(tmp_path / "nowhere")
    with pytest.raises(RouterArtifactError, match="has no CURRENT"):
        load_router(tmp_path)
    version = save_router(tmp_path, *trained)
    weights = version / "weights.npz"
    good = weights.read_bytes()
    weights.write_bytes(good[:-10] + b"0123456789")
    with pytest.raises(RouterArtifactError, match="digest"):
        load_router(tmp_path)
    weights.write_bytes(good)
    manifest_path = version / "manifest.json"
    raw = orjson.loads(manifest_path.read_bytes())
    manifest_path.write_bytes(orjson.dumps({**raw, "format_version": 99}))
    with pytest.raises(RouterArtifactError, match="format_version 99, this switchyard reads 1"):
        load_router(tmp_path)
    manifest_path.write_bytes(b"{not json")
    with pytest.raises(RouterArtifactError, match="not readable JSON"):
        load_router(tmp_path)
    manifest_path.write_bytes(orjson.dumps({**raw, "reference_cost_usd": -1}))
    with pytest.raises(RouterArtifactError, match="reference_cost_usd"):
        load_router(tmp_path)
    (tmp_path / "CURRENT").write_text("../elsewhere\n")
    with pytest.raises(RouterArtifactError, match="does not name a version"):
        load_router(tmp_path)


def test_weights_that_do_not_fit_the_manifest(
    trained: tuple[RouterManifest, RouterArrays], tmp_path: Path
) -> None:
    manifest, arrays = trained
    narrow = RouterArrays(idf=arrays.idf, coef=arrays.coef[:, :10], intercept=arrays.intercept)
    save_router(tmp_path, manifest, narrow)
    with pytest.raises(RouterArtifactError, match="unusable weights: weights have shape"):
        load_router(tmp_path)
    assert np.isfinite(arrays.coef).all()
