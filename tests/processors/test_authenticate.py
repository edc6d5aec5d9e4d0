"""Signed envelopes: what proves a tenant, and every way a job fails to."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors import authenticate
from processors.authenticate import SigningKey, admit, canonical, sign, verify
from processors.router_hop import Position, RouterView, route_hop
from schemas.codec import dumps
from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter
from schemas.errors import (
    InvalidRequest,
    SignatureInvalid,
    SignatureStale,
    TenantMismatch,
    Unauthenticated,
    UnknownTenant,
)
from schemas.telemetry import TelemetryEvent
from tests.helpers import demo_keys, demo_secrets, make_request, sample_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = sample_config()
KEYS = demo_keys(BASE)
SECRETS = demo_secrets(BASE)
JOB = dumps(make_request(request_id="r-1", tenant="acme"))


def headers_of(value: bytes, key: SigningKey, at: datetime = NOW) -> dict[str, bytes]:
    return dict(sign(value, key, at))


def configured(**acme: Any) -> SwitchyardConfig:
    raw = BASE.model_dump()
    raw["tenants"]["acme"].update(acme)
    return SwitchyardConfig.model_validate(raw)


# --- the envelope ----------------------------------------------------------------


def test_the_canonical_bytes_are_exactly_the_documented_ones() -> None:
    assert canonical("acme", "acme-1", 1795435200000, b'{"a":1}') == (
        b'v1\nacme\nacme-1\n1795435200000\n{"a":1}'
    )


def test_sign_gives_the_four_headers_with_a_hex_hmac_of_the_canonical_bytes() -> None:
    key = SigningKey("acme", "acme-1", b"s3cret")
    headers = headers_of(b"{}", key)
    stamp = int(NOW.timestamp() * 1000)
    expected = hmac.new(b"s3cret", b"v1\nacme\nacme-1\n%d\n{}" % stamp, hashlib.sha256)
    assert headers == {
        "sy-tenant": b"acme",
        "sy-key-id": b"acme-1",
        "sy-timestamp": str(stamp).encode(),
        "sy-signature": expected.hexdigest().encode(),
    }


def test_a_signed_job_verifies_as_its_tenant() -> None:
    assert verify(JOB, headers_of(JOB, KEYS["acme"]), BASE, SECRETS, NOW) == "acme"


def test_a_job_without_signature_headers_is_unsigned_not_refused_by_verify() -> None:
    assert verify(JOB, {"traceparent": b"00-ab"}, BASE, SECRETS, NOW) is None


@pytest.mark.parametrize("missing", authenticate.SIGNATURE_HEADERS)
def test_incomplete_signature_headers_are_invalid(missing: str) -> None:
    headers = headers_of(JOB, KEYS["acme"])
    del headers[missing]
    with pytest.raises(SignatureInvalid, match="incomplete"):
        verify(JOB, headers, BASE, SECRETS, NOW)


def test_a_tampered_body_is_invalid() -> None:
    headers = headers_of(JOB, KEYS["acme"])
    tampered = JOB.replace(b"hello there", b"hello thera")
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(tampered, headers, BASE, SECRETS, NOW)


def test_a_moved_timestamp_is_invalid() -> None:
    headers = headers_of(JOB, KEYS["acme"])
    headers["sy-timestamp"] = str(int(headers["sy-timestamp"]) + 1).encode()
    with pytest.raises(SignatureInvalid):
        verify(JOB, headers, BASE, SECRETS, NOW)


@pytest.mark.parametrize("stamp", [b"-5", b"12.5", b"soon", "١٢".encode(), b"9" * 20])
def test_a_timestamp_that_is_not_epoch_milliseconds_is_invalid(stamp: bytes) -> None:
    headers = headers_of(JOB, KEYS["acme"])
    headers["sy-timestamp"] = stamp
    with pytest.raises(SignatureInvalid):
        verify(JOB, headers, BASE, SECRETS, NOW)


def test_an_unknown_key_id_is_invalid() -> None:
    forged = SigningKey("acme", "acme-9", b"guess")
    with pytest.raises(SignatureInvalid, match="does not know"):
        verify(JOB, headers_of(JOB, forged), BASE, SECRETS, NOW)


def test_another_tenants_key_does_not_sign_for_this_tenant() -> None:
    globex = KEYS["globex"]
    as_acme = SigningKey("acme", globex.key_id, globex.secret)
    with pytest.raises(SignatureInvalid):
        verify(JOB, headers_of(JOB, as_acme), BASE, SECRETS, NOW)


def test_a_tenant_not_configured_is_invalid() -> None:
    stranger = SigningKey("mallory", "acme-1", KEYS["acme"].secret)
    with pytest.raises(SignatureInvalid):
        verify(JOB, headers_of(JOB, stranger), BASE, SECRETS, NOW)


def test_a_key_whose_secret_the_router_lacks_is_invalid() -> None:
    with pytest.raises(SignatureInvalid, match="no secret"):
        verify(JOB, headers_of(JOB, KEYS["acme"]), BASE, lambda t, k: None, NOW)


def test_the_wrong_secret_is_invalid() -> None:
    wrong = SigningKey("acme", "acme-1", b"not-the-secret")
    with pytest.raises(SignatureInvalid):
        verify(JOB, headers_of(JOB, wrong), BASE, SECRETS, NOW)


@pytest.mark.parametrize("seconds", [-301, 301, -86_400])
def test_a_signature_outside_the_window_either_way_is_stale(seconds: int) -> None:
    headers = headers_of(JOB, KEYS["acme"], NOW + timedelta(seconds=seconds))
    with pytest.raises(SignatureStale):
        verify(JOB, headers, BASE, SECRETS, NOW)


@pytest.mark.parametrize("seconds", [-299, 0, 299])
def test_a_signature_inside_the_window_is_fresh(seconds: int) -> None:
    headers = headers_of(JOB, KEYS["acme"], NOW + timedelta(seconds=seconds))
    assert verify(JOB, headers, BASE, SECRETS, NOW) == "acme"


def test_the_window_comes_from_the_config() -> None:
    raw = BASE.model_dump()
    raw["security"] = {"signature_window_s": 10}
    narrow = SwitchyardConfig.model_validate(raw)
    headers = headers_of(JOB, KEYS["acme"], NOW - timedelta(seconds=11))
    assert verify(JOB, headers, BASE, SECRETS, NOW) == "acme"
    with pytest.raises(SignatureStale):
        verify(JOB, headers, narrow, SECRETS, NOW)


def test_the_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    constant_time = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr(authenticate.hmac, "compare_digest", spy)
    headers = headers_of(JOB, KEYS["acme"])
    assert verify(JOB, headers, BASE, SECRETS, NOW) == "acme"
    assert compared == [(headers["sy-signature"].decode(),) * 2]


def test_rotation_both_keys_verify_and_producers_sign_with_the_newest() -> None:
    old = {"id": "acme-1", "secret_env": "SY_TEST_ACME_1", "demo_secret": "old-secret"}
    new = {"id": "acme-2", "secret_env": "SY_TEST_ACME_2", "demo_secret": "new-secret"}
    rotated = configured(keys=[old, new])
    secrets = demo_secrets(rotated)
    for key in (
        SigningKey("acme", "acme-1", b"old-secret"),
        SigningKey("acme", "acme-2", b"new-secret"),
    ):
        assert verify(JOB, headers_of(JOB, key), rotated, secrets, NOW) == "acme"
    assert demo_keys(rotated)["acme"].key_id == "acme-2"
    retired = configured(keys=[new])
    old_signed = headers_of(JOB, SigningKey("acme", "acme-1", b"old-secret"))
    with pytest.raises(SignatureInvalid):
        verify(JOB, old_signed, retired, demo_secrets(retired), NOW)


# --- admit: who may send what ------------------------------------------------------


def test_admit_returns_the_parsed_job_of_its_signer() -> None:
    request = admit(JOB, headers_of(JOB, KEYS["acme"]), BASE, SECRETS, NOW)
    assert request == make_request(request_id="r-1", tenant="acme")


def test_an_unsigned_job_of_a_signed_tenant_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated) as caught:
        admit(JOB, {}, BASE, SECRETS, NOW)
    assert caught.value.code == "unauthenticated"


def test_an_unsigned_job_of_a_tenant_without_auth_is_admitted() -> None:
    assert admit(JOB, {}, configured(auth="none"), SECRETS, NOW).tenant == "acme"


def test_a_job_signed_by_one_tenant_naming_another_is_a_mismatch() -> None:
    with pytest.raises(TenantMismatch) as caught:
        admit(JOB, headers_of(JOB, KEYS["globex"]), BASE, SECRETS, NOW)
    assert caught.value.code == "tenant_mismatch"


def test_a_signed_job_naming_an_unknown_tenant_is_a_mismatch_not_unknown_tenant() -> None:
    job = dumps(make_request(tenant="nobody"))
    with pytest.raises(TenantMismatch):
        admit(job, headers_of(job, KEYS["acme"]), BASE, SECRETS, NOW)


def test_an_unsigned_malformed_job_naming_a_signed_tenant_is_unauthenticated() -> None:
    job = b'{"request_id": "r-9", "tenant": "acme", "messages": 5}'
    with pytest.raises(Unauthenticated):
        admit(job, {}, BASE, SECRETS, NOW)


def test_a_signed_malformed_job_naming_another_tenant_is_a_mismatch() -> None:
    job = b'{"request_id": "r-9", "tenant": "acme", "messages": 5}'
    with pytest.raises(TenantMismatch):
        admit(job, headers_of(job, KEYS["globex"]), BASE, SECRETS, NOW)


def test_a_signed_malformed_job_of_its_own_tenant_is_an_ordinary_invalid_request() -> None:
    job = b'{"request_id": "r-9", "tenant": "acme", "messages": 5}'
    with pytest.raises(InvalidRequest) as caught:
        admit(job, headers_of(job, KEYS["acme"]), BASE, SECRETS, NOW)
    assert type(caught.value) is InvalidRequest


def test_an_unsigned_job_of_an_unknown_tenant_stays_unknown_tenant() -> None:
    job = dumps(make_request(tenant="nobody"))
    with pytest.raises(UnknownTenant):
        admit(job, {}, BASE, SECRETS, NOW)


def test_a_principal_tenant_is_admitted_unsigned_when_the_broker_authenticates() -> None:
    raw = BASE.model_dump()
    raw["tenants"]["acme"]["auth"] = "principal"
    raw["security"] = {"broker_authenticates": True}
    config = SwitchyardConfig.model_validate(raw)
    assert admit(JOB, {}, config, SECRETS, NOW).tenant == "acme"
    with pytest.raises(SignatureInvalid):  # a signature it carries is still checked
        admit(JOB, headers_of(JOB, KEYS["globex"]) | {"sy-tenant": b"acme"}, config, SECRETS, NOW)


# --- the router hop: refused jobs are only dead-lettered ----------------------------


def refused(raw: bytes, headers: dict[str, bytes]) -> DeadLetter:
    return refusal(raw, headers)[0]


def refusal(raw: bytes, headers: dict[str, bytes]) -> tuple[DeadLetter, TelemetryEvent]:
    result = route_hop(
        raw, headers, Position("requests", 2, 9), False, BASE,
        RouterView(budget=lambda tenant: None, secrets=SECRETS), NOW, lambda: 1.0,
    )  # fmt: skip
    # No reply, no dispatch: a dead letter, and the audit trail's row.
    assert [o.kind for o in result.outputs] == ["dead_letter", "telemetry"]
    assert (result.tenant, result.snapshot) == (None, None)  # no budget reserved
    letter, audit = result.outputs[0].message, result.outputs[1].message
    assert isinstance(letter, DeadLetter) and isinstance(audit, TelemetryEvent)
    assert audit.request is None and [r.action for r in audit.audit] == ["forged"]
    assert audit.audit[0].rule == letter.error.code
    assert (letter.source_partition, letter.source_offset, letter.stage) == (2, 9, "validate")
    return letter, audit


def test_the_router_dead_letters_each_refusal_with_its_code_and_no_reply() -> None:
    acme, globex = KEYS["acme"], KEYS["globex"]
    tampered = JOB.replace(b"hello there", b"hello thera")
    cases = {
        "unauthenticated": (JOB, {}),
        "signature_invalid": (tampered, headers_of(JOB, acme)),
        "signature_stale": (JOB, headers_of(JOB, acme, NOW - timedelta(hours=1))),
        "tenant_mismatch": (JOB, headers_of(JOB, globex)),
    }
    for code, (raw, headers) in cases.items():
        letter = refused(raw, headers)
        assert letter.error.code == code
        assert (letter.request_id, letter.tenant) == ("r-1", "acme")


def test_no_error_message_carries_the_secret_or_the_signature() -> None:
    headers = headers_of(JOB, KEYS["acme"])
    tampered = JOB.replace(b"hello there", b"hello thera")
    letter, audit = refusal(tampered, headers)
    text = letter.model_dump_json() + audit.model_dump_json()
    assert KEYS["acme"].secret.decode() not in text
    assert headers["sy-signature"].decode() not in text
