"""Tenant-scoped identity and budgets decided on the tenant's home partition, as pure data."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import pytest

from processors.budget import period_of
from processors.idempotency import duplicate_action
from processors.outputs import Output
from processors.router_hop import Position, RouterView, route_hop, settle_hop
from schemas.answer import AnsweredRequest, ledger_key
from schemas.budget import BudgetSnapshot
from schemas.codec import dumps
from schemas.config import SwitchyardConfig
from schemas.decision import DispatchJob, SourcePosition
from schemas.messages import InferenceReply
from schemas.rate_limits import TenantRateLimits
from schemas.settlement import SpendSettlement
from tests.helpers import (
    demo_secrets,
    dispatch_job,
    make_request,
    sample_config,
    signed_as,
    with_tenant,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONFIG = sample_config()
PARTITIONS = 4
SOURCE = SourcePosition(partition=2, offset=41)


# --- the answer ledger and dedup ---------------------------------------------------


def ledger_entry(tenant: str, request_id: str = "r-1") -> AnsweredRequest:
    reply = InferenceReply(request_id=request_id, tenant=tenant, status="ok", finished_at=NOW)
    return AnsweredRequest(
        tenant=tenant, request_id=request_id, sources=[SOURCE], reply=reply, answered_at=NOW
    )


def test_another_tenants_answer_for_the_same_request_id_is_never_reused() -> None:
    job = dispatch_job(NOW, source=SOURCE)  # acme's r-1
    assert duplicate_action(ledger_entry("acme"), job, NOW, 3600) == "skip"
    # Same request_id and even the same source position: still not this job's answer.
    assert duplicate_action(ledger_entry("globex"), job, NOW, 3600) == "process"
    moved = dispatch_job(NOW, source=SourcePosition(partition=2, offset=99))
    assert duplicate_action(ledger_entry("acme"), moved, NOW, 3600) == "resend"
    assert duplicate_action(ledger_entry("globex"), moved, NOW, 3600) == "process"


def test_ledger_entries_written_before_the_tenant_field_read_the_replys_tenant() -> None:
    old = ledger_entry("globex").model_dump(mode="json")
    del old["tenant"]
    assert AnsweredRequest.model_validate(old).key == ("globex", "r-1")


def test_ledger_keys_never_collide_across_tenants() -> None:
    # Tenant and request_id may both contain ':' '/' '.' '-': the separator is none of them.
    pairs = [("a", "b:c"), ("a:b", "c"), ("acme", "r-1"), ("globex", "r-1"), ("a/b", "c")]
    assert len({ledger_key(t, r) for t, r in pairs}) == len(pairs)


# --- budgets on any partition -------------------------------------------------------


@dataclass
class Router:
    """One router over simulated topics: partitions with offsets and the budget table."""

    config: SwitchyardConfig
    table: dict[str, BudgetSnapshot] = field(default_factory=dict)
    offsets: Counter[tuple[str, int]] = field(default_factory=Counter)
    handled: list[tuple[Position, bytes]] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)

    def write(self, topic: str, partition: int, raw: bytes) -> None:
        offset = self.offsets[(topic, partition)]
        self.offsets[(topic, partition)] += 1
        self.handle(Position(topic, partition, offset), raw)

    def handle(self, at: Position, raw: bytes) -> None:
        if at.topic == "settlements":
            result = settle_hop(raw, at, self.config, self.table.get, NOW)
        else:
            view = RouterView(budget=self.table.get, secrets=demo_secrets(self.config))
            tenant = orjson.loads(raw)["tenant"]
            headers = signed_as(tenant, raw, NOW)
            result = route_hop(raw, headers, at, False, self.config, view, NOW, lambda: 1.0)
        self.handled.append((at, raw))
        if result.tenant is not None and result.snapshot is not None:
            self.table[result.tenant] = result.snapshot
        self.outputs.extend(result.outputs)

    def replay_everything(self) -> None:
        """At-least-once: every message handled so far is delivered again."""
        for at, raw in list(self.handled):
            self.handle(at, raw)

    def replies(self) -> list[InferenceReply]:
        return [o.message for o in self.outputs if isinstance(o.message, InferenceReply)]

    def dispatched(self) -> list[DispatchJob]:
        return [o.message for o in self.outputs if isinstance(o.message, DispatchJob)]


def jobs_on_every_partition(router: Router, tenant: str, per_partition: int = 3) -> int:
    """Jobs of ``tenant`` on every partition; offsets interleave with other tenants'."""
    n = 0
    for _ in range(per_partition):
        for partition in range(PARTITIONS):
            request = make_request(request_id=f"{tenant}-{n}", tenant=tenant)
            router.write("requests", partition, dumps(request))
            n += 1
    return n


def test_an_over_budget_tenants_jobs_on_every_partition_are_all_rejected() -> None:
    tenant = CONFIG.tenants["initech"]
    assert tenant.budget_usd is not None
    # The tenant's own partition is far ahead of the others: the old per-topic offset
    # took every job elsewhere for a redelivery and served it without a reservation.
    spent = BudgetSnapshot(
        period=period_of(tenant, NOW), spent_usd=tenant.budget_usd, applied={"requests:2": 500}
    )
    router = Router(CONFIG, table={"initech": spent})
    router.offsets.update({("requests", 2): 501})
    n = jobs_on_every_partition(router, "initech")
    assert router.dispatched() == []
    replies = router.replies()
    assert len(replies) == n and {r.status for r in replies} == {"rejected"}
    assert {r.error.code for r in replies if r.error} == {"budget_exhausted"}
    snap = router.table["initech"]
    assert (snap.spent_usd, snap.reserved_usd, snap.requests) == (tenant.budget_usd, 0.0, 0)


def test_jobs_on_every_partition_are_each_reserved_exactly_once_even_when_replayed() -> None:
    router = Router(CONFIG)
    n = jobs_on_every_partition(router, "acme") + jobs_on_every_partition(router, "globex")
    first = router.dispatched()
    assert len(first) == n
    router.replay_everything()
    for name in ("acme", "globex"):
        snap = router.table[name]
        jobs = [j for j in first if j.request.tenant == name]
        assert snap.requests == len(jobs) == n // 2
        estimates = sum(j.decision.estimated_cost_usd for j in jobs)
        assert snap.reserved_usd == pytest.approx(estimates)
        last = 2 if name == "acme" else 5  # three jobs per partition each, acme's first
        assert snap.applied == {f"requests:{p}": last for p in range(PARTITIONS)}


def test_settlements_on_any_partition_are_counted_once_each() -> None:
    held = BudgetSnapshot(period="2026-11", reserved_usd=1.0, applied={"settlements:1": 40})
    router = Router(CONFIG, table={"acme": held})
    router.offsets.update({("settlements", 1): 41})
    for partition in range(PARTITIONS):
        settlement = SpendSettlement(
            request_id=f"r-{partition}", tenant="acme", reserved_usd=0.25, actual_usd=0.125
        )
        router.write("settlements", partition, dumps(settlement))
    router.replay_everything()
    snap = router.table["acme"]
    assert (snap.reserved_usd, snap.spent_usd) == (0.0, 0.5)
    assert router.outputs == []


def test_a_snapshot_from_before_per_partition_offsets_is_read_and_migrated() -> None:
    old = BudgetSnapshot.model_validate(
        {"period": "2026-11", "reserved_usd": 0.5, "requests": 3, "request_offset": 100}
    )
    router = Router(CONFIG, table={"acme": old})
    # The replayed tail of the tenant's partition comes first: already applied.
    router.handle(Position("requests", 1, 99), dumps(make_request(tenant="acme")))
    assert router.table["acme"].applied == {"requests:1": 100}
    assert router.table["acme"].request_offset == -1 and router.table["acme"].requests == 3
    # Every other partition starts from its beginning.
    router.handle(Position("requests", 3, 0), dumps(make_request(tenant="acme")))
    router.handle(Position("requests", 1, 101), dumps(make_request(tenant="acme")))
    snap = router.table["acme"]
    assert snap.applied == {"requests:1": 101, "requests:3": 0} and snap.requests == 5


def test_replaying_everything_sends_nothing_a_second_time() -> None:
    """Routed, budget-refused and rate-limited jobs alike: a replay decides nothing again
    (the worker stores a batch's snapshots only after its outputs are acknowledged)."""
    limited = with_tenant(CONFIG, "acme", rate_limits=TenantRateLimits(requests_per_minute=2))
    router = Router(with_tenant(limited, "initech", budget_usd=1e-9))
    for tenant in ("acme", "initech", "globex"):
        jobs_on_every_partition(router, tenant, per_partition=1)
    codes = sorted(r.error.code for r in router.replies() if r.error)
    assert "rate_limited" in codes and "budget_exhausted" in codes
    sent, table = list(router.outputs), dict(router.table)
    router.replay_everything()
    assert router.outputs == sent
    assert router.table == table
