"""The Kafka distribution a local cluster runs: found, checked against its sums, unpacked once.

Looked for in this order: a path the user gives (``--dist``), ``$SWITCHYARD_KAFKA_DIST``,
``$KAFKA_HOME``, then the shared Apache Kafka 3.9.0 beside the project
(``../shared/engines/kafka/``). A tarball is unpacked into the user's cache, once.
"""

import contextlib
import hashlib
import os
import shutil
import tarfile
from pathlib import Path

from schemas.errors import BrokerError

KAFKA_VERSION = "3.9.0"
DIST_NAME = f"kafka_2.13-{KAFKA_VERSION}"
# Where a checkout finds the shared distribution: beside the project, as on our machines.
SHARED_DIST = Path(__file__).resolve().parents[3] / "shared" / "engines" / "kafka"
DIST_ENV = "SWITCHYARD_KAFKA_DIST"


def find_distribution(given: Path | None = None) -> Path:
    """A Kafka home folder (with ``bin/kafka-server-start.sh``), unpacking a tarball once.

    Looks at ``given``, then ``$SWITCHYARD_KAFKA_DIST``, ``$KAFKA_HOME``, then the shared
    distribution beside the project. A tarball is checked against a ``SHA256SUMS`` beside
    it, if there is one, and unpacked into the user's cache.
    """
    candidates = [given, _env_path(DIST_ENV), _env_path("KAFKA_HOME"), SHARED_DIST]
    for candidate in candidates:
        if candidate is None:
            continue
        home = _as_home(candidate)
        if home is not None:
            return home
        if given is not None and candidate == given:
            raise BrokerError(f"no Kafka distribution at {given}")
    raise BrokerError(
        f"no Kafka distribution: pass --dist (a Kafka {KAFKA_VERSION} folder or .tgz), "
        f"or set KAFKA_HOME; the shared one is looked for at {SHARED_DIST}"
    )


def distribution_available() -> bool:
    try:
        find_distribution()
    except BrokerError:
        return False
    return shutil.which("java") is not None


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _as_home(path: Path) -> Path | None:
    if (path / "bin" / "kafka-server-start.sh").exists():
        return path
    tarball = path / f"{DIST_NAME}.tgz" if path.is_dir() else path
    if tarball.is_file() and tarball.name.endswith((".tgz", ".tar.gz")):
        return _unpacked(tarball)
    return None


def _unpacked(tarball: Path) -> Path:
    digest = _sha256(tarball)
    _check_sums(tarball, digest)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "switchyard"
    target = cache / f"kafka-{digest[:12]}"
    home = target / DIST_NAME
    if (home / "bin" / "kafka-server-start.sh").exists():
        return home
    staging = cache / f".unpacking-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(staging, filter="data")
    with contextlib.suppress(OSError):  # another process may have won the race
        staging.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    if not (home / "bin" / "kafka-server-start.sh").exists():
        raise BrokerError(f"{tarball} does not unpack to {DIST_NAME}/bin/kafka-server-start.sh")
    for script in (home / "bin").glob("*.sh"):
        script.chmod(0o755)
    return home


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _check_sums(tarball: Path, digest: str) -> None:
    sums = tarball.parent / "SHA256SUMS"
    if not sums.exists():
        return
    for line in sums.read_text().splitlines():
        expected, _, name = line.partition("  ")
        if name.strip() == tarball.name and expected != digest:
            raise BrokerError(f"{tarball} does not match its SHA256SUMS: refusing to run it")
