"""State files that hold a token: readable and writable by their owner only."""

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600 from the first byte (written beside it, then
    renamed, so no reader sees a partial file and an older, wider mode does not survive)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older leftover file keeps its mode through O_CREAT
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(partial, path)
