"""Where a forwarded job was first read, sealed, so a second copy of it is known as one.

A job that arrives on another partition than its tenant's home is forwarded there as
written (``rekey``). If the partition it arrived on changes owner, or its router
crashes, after the forward is sent but before its offset is committed, the next owner
forwards it again: two copies on the home partition, at two offsets. Each copy carries
the position it was first read at, in one header::

    sy-origin    b"<partition>:<offset>:<seal>"

where the seal is an HMAC-SHA256 with the cluster key over ``o1``, the topic, the key
(the tenant), the position and the job's bytes. The home router then counts the job as
read at its origin: the budget snapshot's applied offsets (``processors.budget``) mark
``topic:<origin partition>``, and the second copy is a replay there, decided and sent
nothing. Only a key holder can name an origin: a producer that could would mark a
tenant's future offsets applied and have its jobs skipped.
"""

from processors.authenticate import digests_match, hmac_hex
from processors.budget import Position
from processors.seal import AnyHeaders, header_pairs

ORIGIN_HEADER = "sy-origin"
ORIGIN_VERSION = b"o1"


def _canonical(topic: str, key: bytes, origin: Position, value: bytes) -> bytes:
    where = f"{origin.partition}:{origin.offset}".encode()
    key_part = str(len(key)).encode() + b":" + key
    return b"\n".join([ORIGIN_VERSION, topic.encode(), key_part, where]) + b"\n" + value


def origin_header(
    cluster_key: bytes, topic: str, key: bytes, value: bytes, origin: Position
) -> tuple[str, bytes]:
    """The ``sy-origin`` header of a job forwarded to ``topic`` under ``key``."""
    mac = hmac_hex(cluster_key, _canonical(topic, key, origin, value))
    return ORIGIN_HEADER, f"{origin.partition}:{origin.offset}:{mac}".encode()


def sealed_origin(
    headers: AnyHeaders, cluster_key: bytes, topic: str, key: bytes, value: bytes
) -> Position | None:
    """The origin a key holder gave this record, or None (none given, or not sealed)."""
    given = [v for k, v in header_pairs(headers) if k == ORIGIN_HEADER and v]
    if len(given) != 1:
        return None
    parts = given[0].split(b":")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    origin = Position(topic, int(parts[0]), int(parts[1]))
    expected = hmac_hex(cluster_key, _canonical(topic, key, origin, value))
    return origin if digests_match(expected, parts[2].decode("ascii", "replace")) else None
