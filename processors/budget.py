"""Per-tenant spend accounting: reserve an estimate at routing, settle the actual cost.

The table that stores snapshots is fed at-least-once, so each message must
count once: the snapshot carries the last offset it applied from each source
partition (``BudgetSnapshot.applied``, keyed by topic and partition), and a
message at or below its own partition's offset was already applied.

Why per partition, not per topic: a producer may write a tenant's job to any
partition (unkeyed, keyed by something else, another client's partitioner),
and offsets of two partitions are unrelated. With one offset per topic, a job
on another partition whose offset happened to be lower than the tenant's last
one was taken for a redelivery and served without a reservation, past the
budget. (Re-keying such jobs to the tenant's partition was the alternative; it
adds a forward whose crash-replay would itself be reserved twice.) The router
stores each snapshot under the tenant's key (the table uses the partitioner),
so one tenant has one snapshot whichever partitions its messages came on.

Snapshots written before ``applied`` existed carry one offset per topic, which
was the position on the partition the tenant's keyed jobs use: the first
partition of that topic seen after the upgrade (its replayed tail) inherits it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from processors import rate_limit, scoped_budget
from schemas.budget import BudgetSnapshot
from schemas.config import TenantSpec
from schemas.scoped_budgets import ScopeBudget
from schemas.settlement import SpendSettlement

BUDGET_EXHAUSTED = "budget exhausted for this period"


LegacyField = Literal["request_offset", "prepared_offset", "settlement_offset"]


@dataclass(frozen=True)
class Position:
    """Where a message was read: its topic, partition and offset."""

    topic: str
    partition: int
    offset: int

    @property
    def source(self) -> str:
        """The snapshot's key for this partition (topic names never contain ':')."""
        return f"{self.topic}:{self.partition}"


class BudgetVerdict(BaseModel):
    allowed: bool
    snapshot: BudgetSnapshot
    reason: str
    # The request was applied to this snapshot already (a replay after a crash): none of
    # its effects, reservation or rate-limit charge, is repeated.
    replay: bool = False
    # Refused only by a soft team or app budget whose over_soft is downgrade: a cheaper
    # model may still go (reserve again with soft_ok).
    downgrade: bool = False


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


def last_applied(
    snapshot: BudgetSnapshot, at: Position, legacy: LegacyField
) -> tuple[int, BudgetSnapshot]:
    """The last offset applied from ``at``'s partition, and the snapshot with the old
    per-topic offset (``legacy``) moved to that partition if this is the topic's first
    partition seen since the upgrade."""
    known = snapshot.applied.get(at.source)
    if known is not None:
        return known, snapshot
    old = getattr(snapshot, legacy)
    topic_seen = any(key.rsplit(":", 1)[0] == at.topic for key in snapshot.applied)
    if old < 0 or topic_seen:
        return -1, snapshot
    moved = snapshot.model_copy(update={"applied": {**snapshot.applied, at.source: old}})
    return old, moved.model_copy(update={legacy: -1})


def _applying(snapshot: BudgetSnapshot, at: Position, **update: float | int) -> BudgetSnapshot:
    return snapshot.model_copy(
        update={**update, "applied": {**snapshot.applied, at.source: at.offset}}
    )


def seen(
    snapshot: BudgetSnapshot | None,
    tenant: TenantSpec,
    at: Position,
    now: datetime,
    prepared: bool = False,
) -> BudgetVerdict:
    """Whether the request read at ``at`` was applied already (``replay``); if not, the
    snapshot that marks it applied with nothing reserved, which a job refused without a
    reservation stores, so that its replay is recognised as one too."""
    legacy: LegacyField = "prepared_offset" if prepared else "request_offset"
    applied, snap = last_applied(current(snapshot, tenant, now), at, legacy)
    if at.offset <= applied:
        return BudgetVerdict(
            allowed=True, snapshot=snap, reason="already applied (redelivery)", replay=True
        )
    return BudgetVerdict(allowed=True, snapshot=_applying(snap, at), reason="not yet applied")


def reserve(
    snapshot: BudgetSnapshot | None,
    tenant: TenantSpec,
    estimate_usd: float,
    at: Position,
    now: datetime,
    prepared: bool = False,
    scopes: Mapping[str, ScopeBudget] | None = None,
    soft_ok: bool = False,
) -> BudgetVerdict:
    """Admit a request if its estimate fits what is left of the tenant's budget and of
    each team or app budget in ``scopes``, and hold that estimate in all of them.

    ``at`` is where the request was read (requests topic, or the prepared topic
    when ``prepared``, which only picks the old per-topic offset to migrate).
    ``soft_ok`` lets the request past soft budgets (a downgraded job).
    """
    legacy: LegacyField = "prepared_offset" if prepared else "request_offset"
    applied, snap = last_applied(current(snapshot, tenant, now), at, legacy)
    if at.offset <= applied:
        return BudgetVerdict(
            allowed=True, snapshot=snap, reason="already applied (redelivery)", replay=True
        )
    if tenant.budget_usd is not None and snap.committed_usd + estimate_usd > tenant.budget_usd:
        # No figures: the reason reaches the reply and its routing explanation,
        # and a producer learns nothing of the tenant's spend or limit from it.
        return BudgetVerdict(allowed=False, snapshot=_applying(snap, at), reason=BUDGET_EXHAUSTED)
    scopes = scopes or {}
    how, scope = scoped_budget.fit(snap.scopes, scopes, estimate_usd, now, soft_ok)
    if how != "fits":
        kind = (scope or "").split(":", 1)[0]
        reason = f"the {kind}'s budget is exhausted for this period"
        refused = _applying(snap, at)
        return BudgetVerdict(
            allowed=False, snapshot=refused, reason=reason, downgrade=how == "soft_downgrade"
        )
    after = _applying(
        snap, at, reserved_usd=snap.reserved_usd + estimate_usd, requests=snap.requests + 1
    )
    if scopes:
        held = scoped_budget.reserved(snap.scopes, scopes, estimate_usd, now)
        after = after.model_copy(update={"scopes": held})
    return BudgetVerdict(allowed=True, snapshot=after, reason="within budget")


def settle(
    snapshot: BudgetSnapshot | None,
    tenant: TenantSpec,
    settlement: SpendSettlement,
    at: Position,
    now: datetime,
) -> BudgetSnapshot:
    """Release the reservation and count what the provider really charged, once; give
    back to the token rate limits what the job's calls did not use."""
    applied, snap = last_applied(current(snapshot, tenant, now), at, "settlement_offset")
    if at.offset <= applied:
        return snap
    after = _applying(
        snap,
        at,
        reserved_usd=max(snap.reserved_usd - settlement.reserved_usd, 0.0),
        spent_usd=snap.spent_usd + settlement.actual_usd,
    )
    unused = settlement.tokens_charged - settlement.tokens_used
    if unused > 0 and after.rate_tat:
        limits = rate_limit.limits_for(tenant.rate_limits, settlement.team, settlement.app)
        cells = rate_limit.give_back(after.rate_tat, limits, {"tokens": unused}, now.timestamp())
        after = after.model_copy(update={"rate_tat": cells})
    scopes = tenant.budgets.for_job(settlement.team, settlement.app)
    if not scopes:
        return after
    spends = scoped_budget.settled(
        snap.scopes, scopes, settlement.reserved_usd, settlement.actual_usd, now
    )
    return after.model_copy(update={"scopes": spends})


def alerts(
    tenant: TenantSpec,
    scopes: Mapping[str, ScopeBudget],
    before: BudgetSnapshot,
    after: BudgetSnapshot,
    now: datetime,
) -> list[str]:
    """The alert thresholds (the tenant's ``budget_alert_at``, each team or app budget's
    ``alert_at``) that admitting a job took its spend across."""
    lines = []
    share, usd = tenant.budget_alert_at, tenant.budget_usd
    if share is not None and usd is not None:
        if before.committed_usd < share * usd <= after.committed_usd:
            lines.append(scoped_budget.alert_line("tenant", share, usd, tenant.budget_period))
    return lines + scoped_budget.crossed(before.scopes, after.scopes, scopes, now)
