"""A trained router on disk: versioned sub-directories and a ``CURRENT`` pointer.

Layout of a router directory::

    DIR/CURRENT                      the name of the version in use, one line
    DIR/<version>/manifest.json      schemas.router_artifact.RouterManifest
    DIR/<version>/weights.npz        idf, coef, intercept (numpy, no pickles)

``<version>`` is the creation time and the first 8 hex digits of the weights'
sha256, e.g. ``20261123T221500Z-1a2b3c4d``. ``save_router`` writes the version
into a temporary directory, renames it into place, then replaces ``CURRENT``
with ``os.replace``: a reader (``load_router``, a router worker starting) sees
the old version or the new one, never a mix. Old versions stay until removed
by hand. ``load_router`` also accepts a version directory itself.

Every failure to load is a ``RouterArtifactError`` naming the path and what is
wrong: missing, corrupt (bad JSON, weights that do not match the manifest's
digest or shapes) or written by another ``format_version``.
"""

import hashlib
import io
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import orjson
from pydantic import ValidationError

from processors.learning.quality_model import QualityModel, RouterArrays
from schemas.errors import RouterArtifactError
from schemas.router_artifact import FORMAT_VERSION, RouterManifest

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
_ARRAYS = ("idf", "coef", "intercept")
_CHECK_ARRAYS = ("check_idf", "check_coef", "check_intercept")  # absent in routers before them


def save_router(directory: Path, manifest: RouterManifest, arrays: RouterArrays) -> Path:
    """Write a new version of the router into ``directory`` and make it current."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        idf=arrays.idf,
        coef=arrays.coef,
        intercept=arrays.intercept,
        check_idf=arrays.check_idf,
        check_coef=arrays.check_coef,
        check_intercept=arrays.check_intercept,
    )
    weights = buffer.getvalue()
    digest = hashlib.sha256(weights).hexdigest()
    version = f"{manifest.created_at:%Y%m%dT%H%M%SZ}-{digest[:8]}"
    manifest = manifest.model_copy(update={"version": version, "weights_sha256": digest})
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / version
    if not target.exists():
        staging = directory / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            _write(staging / WEIGHTS, weights)
            _write(
                staging / MANIFEST,
                orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2),
            )
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    pointer = directory / f".{CURRENT}.{uuid.uuid4().hex}"
    _write(pointer, (version + "\n").encode())
    os.replace(pointer, directory / CURRENT)
    return target


def load_router(directory: Path) -> QualityModel:
    """The current version in ``directory`` (or ``directory`` itself if it is a version)."""
    version = _version_dir(directory)
    manifest = _manifest(version / MANIFEST)
    try:
        weights = (version / WEIGHTS).read_bytes()
    except OSError as exc:
        raise RouterArtifactError(f"{version / WEIGHTS}: cannot read: {exc.strerror}") from exc
    if hashlib.sha256(weights).hexdigest() != manifest.weights_sha256:
        raise RouterArtifactError(
            f"{version / WEIGHTS}: does not match its manifest's digest (corrupt?)"
        )
    try:
        with np.load(io.BytesIO(weights), allow_pickle=False) as stored:
            found = {name: stored[name] for name in _ARRAYS}
            found |= {name: stored[name] for name in _CHECK_ARRAYS if name in stored.files}
            arrays = RouterArrays(**found)
        return QualityModel(manifest, arrays)
    except (OSError, KeyError, ValueError) as exc:
        raise RouterArtifactError(f"{version / WEIGHTS}: unusable weights: {exc}") from exc


def current_version(directory: Path) -> str | None:
    """The version ``CURRENT`` names, or None if ``directory`` is a version itself or unreadable.

    Cheap (one small file read), for routers polling for a new version.
    """
    try:
        return (directory / CURRENT).read_text().strip() or None
    except OSError:
        return None


def _version_dir(directory: Path) -> Path:
    if (directory / MANIFEST).is_file():
        return directory
    pointer = directory / CURRENT
    if not pointer.is_file():
        what = "does not exist" if not directory.exists() else f"has no {CURRENT} or {MANIFEST}"
        raise RouterArtifactError(
            f"{directory}: not a router directory ({what}); `switchyard router train` makes one"
        )
    name = pointer.read_text().strip()
    if not name or "/" in name or name.startswith("."):
        raise RouterArtifactError(f"{pointer}: does not name a version ({name!r})")
    if not (directory / name / MANIFEST).is_file():
        raise RouterArtifactError(f"{pointer}: names {name}, which has no {MANIFEST}")
    return directory / name


def _manifest(path: Path) -> RouterManifest:
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RouterArtifactError(f"{path}: not readable JSON: {exc}") from exc
    found = raw.get("format_version") if isinstance(raw, dict) else None
    if found != FORMAT_VERSION:
        raise RouterArtifactError(
            f"{path}: format_version {found}, this switchyard reads {FORMAT_VERSION}: retrain"
        )
    try:
        return RouterManifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RouterArtifactError(f"{path}: invalid manifest: {where}: {first['msg']}") from exc


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
