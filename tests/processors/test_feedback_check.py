"""Feedback proves its tenant like a job, and is stamped when it arrived."""

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from processors.feedback_check import admit_feedback
from schemas.config import SwitchyardConfig
from schemas.errors import (
    InvalidRequest,
    SignatureInvalid,
    SignatureStale,
    TenantMismatch,
    Unauthenticated,
)
from tests.helpers import demo_secrets, sample_config, signed_as

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BASE = sample_config()
SECRETS = demo_secrets(BASE)


def feedback(tenant: str = "acme", **fields: Any) -> bytes:
    body = {"request_id": "r-1", "tenant": tenant, "kind": "thumbs", "value": 0, **fields}
    return orjson.dumps(body)


def admitted(raw: bytes, headers: dict[str, bytes], arrived: datetime = NOW) -> Any:
    return admit_feedback(raw, headers, BASE, SECRETS, arrived)


def test_feedback_signed_by_its_tenant_is_admitted_and_stamped_on_arrival() -> None:
    raw = feedback()
    judged = admitted(raw, signed_as("acme", raw, NOW))
    assert (judged.tenant, judged.request_id, judged.kind, judged.value) == (
        "acme",
        "r-1",
        "thumbs",
        0,
    )
    assert judged.at == NOW


def test_a_date_in_the_future_is_clamped_to_the_arrival() -> None:
    raw = feedback(at="2099-01-01T00:00:00Z")
    assert admitted(raw, signed_as("acme", raw, NOW)).at == NOW
    past = feedback(at="2026-11-29T00:00:00Z")
    assert admitted(past, signed_as("acme", past, NOW)).at == datetime(2026, 11, 29, tzinfo=UTC)


def test_unsigned_feedback_for_a_signed_tenant_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        admitted(feedback(), {})


def test_feedback_signed_by_another_tenant_is_refused() -> None:
    raw = feedback("acme")
    with pytest.raises(TenantMismatch):
        admitted(raw, signed_as("globex", raw, NOW))


def test_a_wrong_signature_is_refused() -> None:
    raw = feedback()
    headers = signed_as("acme", raw, NOW)
    with pytest.raises(SignatureInvalid):
        admitted(feedback(value=1), headers)  # signed bytes differ from the value


def test_freshness_is_judged_at_arrival_not_when_read() -> None:
    raw = feedback()
    headers = signed_as("acme", raw, NOW)
    # Read again an hour later (a restarted worker): arrival is still NOW.
    assert admitted(raw, headers, NOW).at == NOW
    with pytest.raises(SignatureStale):
        admitted(raw, headers, NOW + timedelta(hours=1))  # arrived an hour after signing


def test_feedback_for_an_unknown_tenant_is_refused() -> None:
    raw = feedback("mallory")
    with pytest.raises(Unauthenticated):
        admitted(raw, {})


def test_feedback_of_an_unsigned_tenant_needs_no_signature() -> None:
    raw_config = BASE.model_dump()
    raw_config["tenants"]["acme"]["auth"] = "none"
    config = SwitchyardConfig.model_validate(raw_config)
    judged = admit_feedback(feedback(), {}, config, SECRETS, NOW)
    assert judged.tenant == "acme"


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"request_id": "r-1", "kind": "stars"}'])
def test_what_is_not_feedback_is_invalid(raw: bytes) -> None:
    raw_config = BASE.model_dump()
    raw_config["tenants"]["acme"]["auth"] = "none"
    with pytest.raises(InvalidRequest) as caught:
        admit_feedback(raw, {}, SwitchyardConfig.model_validate(raw_config), SECRETS, NOW)
    assert not isinstance(caught.value, Unauthenticated)
