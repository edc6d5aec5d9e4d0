"""orjson encoding of pydantic models: the one serialiser on the hot path."""

from typing import Any

import orjson
from pydantic import BaseModel


def dumps(model: BaseModel) -> bytes:
    """Encode a model as compact JSON bytes (datetimes as RFC 3339, None kept)."""
    return orjson.dumps(model.model_dump(mode="python"), option=orjson.OPT_UTC_Z)


def loads(data: bytes | str) -> Any:
    """Decode JSON bytes; raises ``orjson.JSONDecodeError`` (a ValueError) on bad input."""
    return orjson.loads(data)
