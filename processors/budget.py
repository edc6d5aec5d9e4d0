"""Per-tenant spend accounting: reserve an estimate at routing, settle the actual cost.

The snapshot carries the offsets of the last request and settlement applied to
it. The table that stores snapshots is fed at-least-once, so a message at or
below those offsets was already applied and must not count twice.
"""

from datetime import datetime

from pydantic import BaseModel

from schemas.budget import BudgetSnapshot
from schemas.config import TenantSpec
from schemas.settlement import SpendSettlement

BUDGET_EXHAUSTED = "budget exhausted for this period"


class BudgetVerdict(BaseModel):
    allowed: bool
    snapshot: BudgetSnapshot
    reason: str


def period_of(tenant: TenantSpec, now: datetime) -> str:
    if tenant.budget_period == "day":
        return now.strftime("%Y-%m-%d")
    if tenant.budget_period == "month":
        return now.strftime("%Y-%m")
    return "total"


def current(snapshot: BudgetSnapshot | None, tenant: TenantSpec, now: datetime) -> BudgetSnapshot:
    """The snapshot for the period ``now`` falls in; a new period starts from zero."""
    period = period_of(tenant, now)
    if snapshot is None:
        return BudgetSnapshot(period=period)
    if snapshot.period != period:
        return snapshot.model_copy(
            update={"period": period, "spent_usd": 0.0, "reserved_usd": 0.0, "requests": 0}
        )
    return snapshot


def reserve(
    snapshot: BudgetSnapshot | None,
    tenant: TenantSpec,
    estimate_usd: float,
    offset: int,
    now: datetime,
    prepared: bool = False,
) -> BudgetVerdict:
    """Admit a request if its estimate fits what is left, and hold that estimate.

    ``offset`` is the request's position in the requests topic, or in the
    prepared topic when ``prepared``: each topic's replays are told apart by
    its own last applied offset.
    """
    snap = current(snapshot, tenant, now)
    position = "prepared_offset" if prepared else "request_offset"
    if offset <= getattr(snap, position):
        return BudgetVerdict(allowed=True, snapshot=snap, reason="already applied (redelivery)")
    if tenant.budget_usd is not None and snap.committed_usd + estimate_usd > tenant.budget_usd:
        # No figures: the reason reaches the reply and its routing explanation,
        # and a producer learns nothing of the tenant's spend or limit from it.
        return BudgetVerdict(
            allowed=False,
            snapshot=snap.model_copy(update={position: offset}),
            reason=BUDGET_EXHAUSTED,
        )
    after = snap.model_copy(
        update={
            "reserved_usd": snap.reserved_usd + estimate_usd,
            "requests": snap.requests + 1,
            position: offset,
        }
    )
    return BudgetVerdict(allowed=True, snapshot=after, reason="within budget")


def settle(
    snapshot: BudgetSnapshot | None,
    tenant: TenantSpec,
    settlement: SpendSettlement,
    offset: int,
    now: datetime,
) -> BudgetSnapshot:
    """Release the reservation and count what the provider really charged, once."""
    snap = current(snapshot, tenant, now)
    if offset <= snap.settlement_offset:
        return snap
    return snap.model_copy(
        update={
            "reserved_usd": max(snap.reserved_usd - settlement.reserved_usd, 0.0),
            "spent_usd": snap.spent_usd + settlement.actual_usd,
            "settlement_offset": offset,
        }
    )
