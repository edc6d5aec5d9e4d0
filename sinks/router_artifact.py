"""Router artifacts on disk: ``manifest.json`` plus ``weights.npz`` in one directory.

Written to a temporary directory and renamed into place, so a reader never
sees half an artifact. ``format`` changes when a reader of the old layout
would misread the new one; readers refuse other formats.
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from processors.quality_model import FEATURE_BITS, QualityModel

FORMAT = 1


class ArtifactError(RuntimeError):
    """A router directory that is missing, incomplete or of another format."""


def save_router(directory: Path, model: QualityModel, summary: dict[str, Any]) -> Path:
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".router-", dir=directory.parent))
    manifest = {
        "format": FORMAT,
        "version": model.version,
        "feature_bits": FEATURE_BITS,
        "models": model.models,
        "cost_per_char": model.cost_per_char,
        "reference_cost": model.reference_cost,
        "priors": model.priors,
        "training": summary,
    }
    (staging / "manifest.json").write_bytes(
        orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    np.savez_compressed(
        staging / "weights.npz",
        idf=model.idf.astype(np.float32),
        coef=model.coef.astype(np.float32),
        intercept=model.intercept,
    )
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(staging, directory)
    return directory


def load_router(directory: Path) -> QualityModel:
    try:
        manifest = orjson.loads((directory / "manifest.json").read_bytes())
        weights = np.load(directory / "weights.npz")
    except FileNotFoundError as exc:
        raise ArtifactError(f"{directory}: not a router (run `switchyard router train`)") from exc
    except (orjson.JSONDecodeError, ValueError, OSError) as exc:
        raise ArtifactError(f"{directory}: unreadable router artifact: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("feature_bits") != FEATURE_BITS:
        raise ArtifactError(
            f"{directory}: router format {manifest.get('format')} (this build reads {FORMAT}); "
            "retrain it with `switchyard router train`"
        )
    return QualityModel(
        version=str(manifest["version"]),
        models=list(manifest["models"]),
        idf=weights["idf"].astype(np.float64),
        coef=weights["coef"].astype(np.float64),
        intercept=weights["intercept"].astype(np.float64),
        cost_per_char={m: (float(a), float(b)) for m, (a, b) in manifest["cost_per_char"].items()},
        reference_cost=float(manifest["reference_cost"]),
        priors=manifest["priors"],
    )


def summary_of(directory: Path) -> dict[str, Any]:
    training: dict[str, Any] = orjson.loads((directory / "manifest.json").read_bytes())["training"]
    return training
