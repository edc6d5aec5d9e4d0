"""Reading outcome files: JSON lines of ``schemas.outcomes.OutcomeRow``, plain or gzip.

Gzip is recognised by its magic bytes, not the file name. Blank lines are
skipped. The first bad line stops the read with an ``OutcomeFileError`` that
names the file and the line; so does an id seen twice (in any of the files).
"""

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import orjson
from pydantic import ValidationError

from schemas.errors import OutcomeFileError
from schemas.outcomes import OutcomeRow

_GZIP_MAGIC = b"\x1f\x8b"


def read_outcome_files(paths: Sequence[Path]) -> dict[str, list[OutcomeRow]]:
    """Every file's rows, keyed by the path as given, in file order."""
    seen: dict[str, str] = {}
    files: dict[str, list[OutcomeRow]] = {}
    for path in paths:
        rows = files.setdefault(str(path), [])
        for number, row in _rows(path):
            where = f"{path}:{number}"
            if row.id in seen:
                raise OutcomeFileError(f"{where}: id {row.id!r} already seen at {seen[row.id]}")
            seen[row.id] = where
            rows.append(row)
    return files


def _rows(path: Path) -> Iterator[tuple[int, OutcomeRow]]:
    try:
        with _open(path) as stream:
            for number, line in enumerate(stream, start=1):
                if line.strip():
                    yield number, _parse(path, number, line)
    except OSError as exc:  # includes a truncated or corrupt gzip stream
        raise OutcomeFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise OutcomeFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except EOFError as exc:
        raise OutcomeFileError(f"{path}: gzip stream ends early") from exc


def _open(path: Path) -> IO[str]:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _parse(path: Path, number: int, line: str) -> OutcomeRow:
    try:
        return OutcomeRow.model_validate(orjson.loads(line))
    except orjson.JSONDecodeError as exc:
        raise OutcomeFileError(f"{path}:{number}: not JSON: {exc}") from exc
    except ValidationError as exc:
        issues = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'row'}: {error['msg']}"
            for error in exc.errors()
        )
        raise OutcomeFileError(f"{path}:{number}: {issues}") from exc
