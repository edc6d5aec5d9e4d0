from datetime import UTC, datetime

import pytest

from processors.budget import Position, reserve, settle
from schemas.budget import BudgetSnapshot
from schemas.config import TenantSpec
from schemas.settlement import SpendSettlement

NOW = datetime(2026, 11, 23, tzinfo=UTC)
TENANT = TenantSpec(budget_usd=1.0, budget_period="month")


def settlement(reserved: float, actual: float) -> SpendSettlement:
    return SpendSettlement(request_id="r", tenant="t", reserved_usd=reserved, actual_usd=actual)


def test_reserve_then_settle_moves_estimate_to_actual() -> None:
    held = reserve(None, TENANT, 0.3, Position("requests", 0, 0), now=NOW)
    assert held.allowed
    assert held.snapshot.reserved_usd == pytest.approx(0.3)
    done = settle(
        held.snapshot, TENANT, settlement(0.3, 0.01), Position("settlements", 0, 0), now=NOW
    )
    assert done.reserved_usd == pytest.approx(0.0)
    assert done.spent_usd == pytest.approx(0.01)


def test_reservations_count_against_the_budget() -> None:
    snap = None
    admitted = 0
    for offset in range(10):
        verdict = reserve(snap, TENANT, 0.3, Position("requests", 0, offset), now=NOW)
        snap = verdict.snapshot
        admitted += verdict.allowed
    assert admitted == 3  # 3 x 0.3 fits in 1.0, a fourth does not


def test_settlement_redelivery_is_not_counted_twice() -> None:
    snap = BudgetSnapshot(period="2026-11", reserved_usd=0.5)
    once = settle(snap, TENANT, settlement(0.5, 0.2), Position("settlements", 0, 4), now=NOW)
    twice = settle(once, TENANT, settlement(0.5, 0.2), Position("settlements", 0, 4), now=NOW)
    assert twice == once
    assert twice.spent_usd == pytest.approx(0.2)


def test_unlimited_tenant_is_always_admitted() -> None:
    verdict = reserve(None, TenantSpec(), 1e9, Position("requests", 0, 0), now=NOW)
    assert verdict.allowed
