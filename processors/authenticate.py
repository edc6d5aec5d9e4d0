"""Tenants prove who they are: HMAC-SHA256 over the exact bytes of a job (docs/signing.md).

A signed job carries four Kafka headers::

    sy-tenant     the tenant that signs                      acme
    sy-key-id     which of its keys                          acme-2026-01
    sy-timestamp  milliseconds since the Unix epoch, decimal  1795435200000
    sy-signature  lowercase hex HMAC-SHA256 of the canonical bytes, keyed by the secret

The canonical bytes (version v1) are, with ``\\n`` a single newline byte::

    b"v1\\n" + tenant + b"\\n" + key_id + b"\\n" + timestamp + b"\\n" + value

where ``value`` is the record's value exactly as sent. ``admit`` is what the router
does first with every job: verify the signature and its freshness, parse, and check
that the job names the tenant that signed it. Secrets come from the caller
(``SecretLookup``); nothing here reads the environment, and no secret or signature
appears in an error message.
"""

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from processors.validate import parse_request, salvage_address
from schemas.config import SwitchyardConfig
from schemas.errors import (
    InvalidRequest,
    SignatureInvalid,
    SignatureStale,
    TenantMismatch,
    Unauthenticated,
)
from schemas.messages import InferenceRequest

VERSION = b"v1"
TENANT_HEADER = "sy-tenant"
KEY_HEADER = "sy-key-id"
TIMESTAMP_HEADER = "sy-timestamp"
SIGNATURE_HEADER = "sy-signature"
SIGNATURE_HEADERS = (TENANT_HEADER, KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)

Headers = Mapping[str, bytes | None]  # a record's headers, as faust hands them over
SecretLookup = Callable[[str, str], bytes | None]  # (tenant, key id) -> secret, None: not here


def no_secrets(tenant: str, key_id: str) -> bytes | None:
    return None


@dataclass(frozen=True)
class SigningKey:
    """What a producer signs with: its tenant, the key's id and the secret."""

    tenant: str
    key_id: str
    secret: bytes = field(repr=False)


def canonical(tenant: str, key_id: str, timestamp_ms: int, value: bytes) -> bytes:
    """The bytes a v1 signature covers."""
    head = b"\n".join([VERSION, tenant.encode(), key_id.encode(), str(timestamp_ms).encode()])
    return head + b"\n" + value


def hmac_hex(secret: bytes, message: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``message``: the one MAC of tenant signatures and seals."""
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def digests_match(expected: str, given: str) -> bool:
    """Constant-time comparison of two hex digests (case-insensitive in ``given``)."""
    return hmac.compare_digest(expected, given.lower())


def signature(secret: bytes, tenant: str, key_id: str, timestamp_ms: int, value: bytes) -> str:
    """The hex HMAC-SHA256 of the canonical bytes."""
    return hmac_hex(secret, canonical(tenant, key_id, timestamp_ms, value))


def epoch_ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)


def sign(value: bytes, key: SigningKey, now: datetime) -> list[tuple[str, bytes]]:
    """The four headers that sign ``value`` as ``key``'s tenant at ``now``."""
    at = epoch_ms(now)
    digest = signature(key.secret, key.tenant, key.key_id, at, value)
    return [
        (TENANT_HEADER, key.tenant.encode()),
        (KEY_HEADER, key.key_id.encode()),
        (TIMESTAMP_HEADER, str(at).encode()),
        (SIGNATURE_HEADER, digest.encode()),
    ]


def verify(
    value: bytes,
    headers: Headers,
    config: SwitchyardConfig,
    secret_of: SecretLookup,
    now: datetime,
) -> str | None:
    """The tenant whose key signed ``value``; None when the record carries no signature.

    Raises ``SignatureInvalid`` (incomplete headers, unknown tenant or key id, a
    secret this router does not have, a wrong HMAC) or ``SignatureStale`` (an
    authentic signature older or newer than ``security.signature_window_s``).
    """
    given = [_text(headers.get(name)) for name in SIGNATURE_HEADERS]
    if all(v is None for v in given):
        return None
    tenant, key_id, stamp, digest = given
    if tenant is None or key_id is None or stamp is None or digest is None:
        raise SignatureInvalid("incomplete signature headers: sy-tenant, sy-key-id, "
                               "sy-timestamp and sy-signature go together")  # fmt: skip
    spec = config.tenants.get(tenant)
    if spec is None or all(k.id != key_id for k in spec.keys):
        raise SignatureInvalid("signed with a key this router does not know for that tenant")
    secret = secret_of(tenant, key_id)
    if secret is None:
        raise SignatureInvalid(f"the router has no secret for key {key_id!r}")
    if not stamp.isdigit() or len(stamp) > 15:
        raise SignatureInvalid("sy-timestamp is not milliseconds since the epoch")
    expected = signature(secret, tenant, key_id, int(stamp), value)
    if not digests_match(expected, digest):
        raise SignatureInvalid("the signature does not match the job")
    skew_s = abs(epoch_ms(now) - int(stamp)) / 1000
    if skew_s > config.security.signature_window_s:
        raise SignatureStale(f"signed {skew_s:.0f} s away from the router's clock, the "
                             f"window is {config.security.signature_window_s:g} s")  # fmt: skip
    return tenant


def admit(
    raw: bytes | None,
    headers: Headers,
    config: SwitchyardConfig,
    secret_of: SecretLookup,
    now: datetime,
) -> InferenceRequest:
    """Authenticate, then parse one job: the router's first step.

    Raises ``Unauthenticated`` (or a subclass) when the job does not prove the tenant
    it names: its producer gets no reply. Raises another ``InvalidRequest`` when an
    authenticated (or ``auth: none``) job is malformed: that one may be answered.
    """
    signer = verify(raw or b"", headers, config, secret_of, now)
    try:
        request = parse_request(raw, config)
    except InvalidRequest:
        _, claimed, _ = salvage_address(raw, config.limits.max_message_bytes)
        check_claim(signer, claimed, config)
        raise
    check_claim(signer, request.tenant, config)
    return request


def check_claim(signer: str | None, claimed: str | None, config: SwitchyardConfig) -> None:
    """A signed job must name its signer; an unsigned one a tenant that allows it."""
    if signer is not None:
        if claimed is not None and claimed != signer:
            raise TenantMismatch("the job names a tenant other than the one that signed it")
        return
    spec = config.tenants.get(claimed) if claimed is not None else None
    if spec is not None and spec.auth == "signed":
        raise Unauthenticated(f"tenant {claimed} accepts only signed jobs")


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return ""
