"""Internal records carry proof of origin: a seal made with the cluster key.

Every record Switchyard's workers write to an internal topic (dispatch, retry
tiers, settlements, answers, health, cache, telemetry, dead letters) carries one
Kafka header::

    sy-seal    lowercase hex HMAC-SHA256, keyed by the cluster key, of the canonical bytes

The canonical bytes (version s1) are, with ``\\n`` a single newline byte::

    b"s1\\n" + topic + b"\\n" + key_part + b"\\n" + value

where ``key_part`` is ``b"-"`` for a record without a key (or an empty one) and
``b"<len>:" + key`` otherwise (the length keeps a key from running into the value). The topic is in
the MAC, so a sealed record copied to another topic (a settlement replayed as a
dispatch job) fails the check. A seal proves that a holder of the cluster key
wrote exactly this key and value to this topic; it does not prove freshness: a
sealed record copied again to its own topic is a replay, which the readers'
idempotency (answer ledger, settlement positions) already absorbs.

The key comes from the environment (``CLUSTER_KEY_ENV``); nothing here reads it.
"""

from collections.abc import Iterable, Mapping

from processors.authenticate import digests_match, hmac_hex

SEAL_VERSION = b"s1"
SEAL_HEADER = "sy-seal"
CLUSTER_KEY_ENV = "SWITCHYARD_CLUSTER_KEY"
MIN_KEY_CHARS = 16

HeaderPairs = Iterable[tuple[str, bytes | None]]
AnyHeaders = Mapping[str, bytes | None] | HeaderPairs | None


def canonical(topic: str, key: bytes | None, value: bytes) -> bytes:
    """The bytes an s1 seal covers."""
    key_part = b"-" if not key else str(len(key)).encode() + b":" + key
    return b"\n".join([SEAL_VERSION, topic.encode(), key_part]) + b"\n" + value


def seal(cluster_key: bytes, topic: str, key: bytes | None, value: bytes) -> str:
    """The seal of one record."""
    return hmac_hex(cluster_key, canonical(topic, key, value))


def seal_header(
    cluster_key: bytes, topic: str, key: bytes | None, value: bytes
) -> tuple[str, bytes]:
    """The ``sy-seal`` header for one record."""
    return SEAL_HEADER, seal(cluster_key, topic, key, value).encode()


def header_pairs(headers: AnyHeaders) -> list[tuple[str, bytes | None]]:
    """Headers as ``(name, value)`` pairs, whether given as a mapping (faust) or pairs."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def without_seal(headers: AnyHeaders) -> list[tuple[str, bytes]]:
    """The headers minus any ``sy-seal`` (a record passing on a job's headers re-seals)."""
    return [(k, v or b"") for k, v in header_pairs(headers) if k != SEAL_HEADER]


def is_sealed(
    cluster_key: bytes, topic: str, key: bytes | None, value: bytes | None, headers: AnyHeaders
) -> bool:
    """True when the record carries exactly one seal and it is this key's for this record."""
    given = [v for k, v in header_pairs(headers) if k == SEAL_HEADER]
    if len(given) != 1 or not given[0]:
        return False
    try:
        text = given[0].decode("ascii")
    except UnicodeDecodeError:
        return False
    return digests_match(seal(cluster_key, topic, key, value or b""), text)
