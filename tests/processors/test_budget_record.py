import json
from typing import Any

import pytest

from processors.budget_record import BudgetSeal
from schemas.budget import BudgetSnapshot, StoredBudget

KEY = b"cluster-key-for-tests-0123456789"
TOPIC = "ns.budget-changelog"
SEAL = BudgetSeal(KEY, TOPIC)
SNAPSHOT = BudgetSnapshot(
    period="2026-11", spent_usd=1.2345678901, reserved_usd=0.1, requests=3, applied={"r:0": 7}
)


def through_faust(value: dict[str, Any]) -> Any:
    """What recovery hands back: the value after a JSON round trip (keys may reorder)."""
    return json.loads(json.dumps(value, sort_keys=False))


def test_a_wrapped_snapshot_opens_to_itself_after_a_json_round_trip() -> None:
    stored = through_faust(SEAL.wrap("acme", SNAPSHOT, 4))
    opened = SEAL.open("acme", stored)
    assert opened is not None
    assert opened.version == 4
    assert opened.snapshot == SNAPSHOT
    assert StoredBudget.model_validate(stored).snapshot == SNAPSHOT  # the changelog's schema


@pytest.mark.parametrize(
    "change",
    [
        {"snapshot": {**SNAPSHOT.model_dump(), "spent_usd": 0.0}},
        {"version": 5},
        {"seal": "0" * 64},
        {"seal": None},
        {"version": "4"},
        {"snapshot": "not a mapping"},
    ],
)
def test_any_change_to_a_stored_value_breaks_its_seal(change: dict[str, Any]) -> None:
    stored = {**SEAL.wrap("acme", SNAPSHOT, 4), **change}
    assert SEAL.open("acme", stored) is None


def test_a_value_is_sealed_for_its_tenant_topic_and_key() -> None:
    stored = SEAL.wrap("acme", SNAPSHOT, 1)
    assert SEAL.open("globex", stored) is None
    assert BudgetSeal(KEY, "other.budget-changelog").open("acme", stored) is None
    assert BudgetSeal(b"another-cluster-key-0123456789", TOPIC).open("acme", stored) is None


@pytest.mark.parametrize(
    ("tenant", "value"),
    [
        ("acme", None),
        ("acme", b"\xff\xfe"),
        ("acme", ["a", "list"]),
        ("acme", SNAPSHOT.model_dump()),  # an unsealed snapshot, as stored before seals
        ({"a": 1}, {"version": 1}),
        (None, {"version": 1}),
        (42, {"version": 1, "snapshot": {}, "seal": "x"}),
        ("acme", {"version": 1, "snapshot": {"period": []}, "seal": "é" * 64}),
    ],
)
def test_anything_else_opens_to_none_and_never_raises(tenant: Any, value: Any) -> None:
    assert SEAL.open(tenant, value) is None
    assert not SEAL.admits(tenant, value, None)


def test_recovery_admits_only_a_sealed_value_newer_than_the_one_held() -> None:
    v1, v2 = SEAL.wrap("acme", SNAPSHOT, 1), SEAL.wrap("acme", SNAPSHOT, 2)
    assert SEAL.admits("acme", v1, None)
    assert SEAL.admits("acme", v2, v1)
    assert not SEAL.admits("acme", v1, v2)  # a replayed older record rolls spend back
    assert not SEAL.admits("acme", v2, v2)
    assert SEAL.admits("acme", v1, {"garbage": True})  # nothing valid held: take it
