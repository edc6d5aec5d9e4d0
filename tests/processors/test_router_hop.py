"""The router hop as data: a job's bytes in, every record and the new budget snapshot out."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from processors.authenticate import sign
from processors.cache import cache_key
from processors.outputs import Output
from processors.reply_topics import ReplyTopics
from processors.router import Routed, RoutingContext, route_request
from processors.router_hop import (
    HopResult,
    Position,
    RouterView,
    failed_hop,
    route_hop,
    settle_hop,
)
from schemas.budget import BudgetSnapshot
from schemas.cache import CachedAnswer
from schemas.codec import dumps
from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob, SourcePosition
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from schemas.plan import PlanStep
from schemas.settlement import SpendSettlement
from schemas.telemetry import TelemetryEvent
from tests.helpers import demo_keys, demo_secrets, make_request, sample_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = sample_config()
AT = Position("requests", 3, 42)
SETTLED_AT = Position("settlements", 1, 8)
NO_BUDGET = RouterView(budget=lambda tenant: None)
KEYS = demo_keys(BASE)


def configure(**acme: Any) -> SwitchyardConfig:
    raw = BASE.model_dump()
    raw["tenants"]["acme"].update(acme)
    return SwitchyardConfig.model_validate(raw)


def hop(
    raw: bytes | None,
    config: SwitchyardConfig = BASE,
    view: RouterView = NO_BUDGET,
    prepared: bool = False,
    at: Position = AT,
    signed_as: str | None = "acme",
) -> HopResult:
    """The hop on ``raw``, signed (by default) with ``signed_as``'s demo key."""
    signing = KEYS.get(signed_as) if signed_as is not None and raw is not None else None
    headers = dict(sign(raw, signing, NOW)) if raw is not None and signing is not None else {}
    view = replace(view, secrets=demo_secrets(config))
    return route_hop(raw, headers, at, prepared, config, view, NOW, lambda: 1.5)


def kinds(result: HopResult) -> list[str]:
    return [o.kind for o in result.outputs]


def reply_of(output: Output) -> InferenceReply:
    assert output.kind == "reply" and isinstance(output.message, InferenceReply)
    return output.message


# --- routed -------------------------------------------------------------------


def test_a_routed_job_is_one_dispatch_with_its_headers_and_the_reserved_snapshot() -> None:
    request = make_request(request_id="r-7")
    result = hop(dumps(request))
    assert kinds(result) == ["dispatch"]
    [out] = result.outputs
    assert (out.key, out.topic, out.headers) == ("r-7", None, True)
    job = out.message
    assert isinstance(job, DispatchJob)
    expected = route_request(request, BASE, None, AT, NOW, RoutingContext())
    assert isinstance(expected, Routed)
    assert job.decision == expected.decision and job.explanation == expected.explanation
    assert job.request == request
    assert job.source == SourcePosition(partition=3, offset=42)
    assert (job.received_at, job.routing_ms, job.steps) == (NOW, 1.5, [])
    assert result.tenant == "acme"
    assert result.snapshot == expected.snapshot
    assert result.snapshot.applied == {"requests:3": 42} and result.snapshot.requests == 1
    assert result.snapshot.reserved_usd == job.decision.estimated_cost_usd > 0


def test_a_job_off_its_tenants_home_partition_moves_there_as_written() -> None:
    raw = dumps(make_request(request_id="r-8"))
    result = hop(raw, view=RouterView(budget=lambda t: None, home=lambda tenant: 1))
    assert kinds(result) == ["rekey"]
    [out] = result.outputs
    assert (out.key, out.topic, out.partition, out.headers) == ("acme", "requests", 1, True)
    assert out.message == raw  # byte for byte: its signature still holds
    assert result.snapshot is None  # no budget touched here


def test_a_job_on_its_tenants_home_partition_is_routed() -> None:
    result = hop(dumps(make_request()), view=RouterView(budget=lambda t: None, home=lambda t: 3))
    assert kinds(result) == ["dispatch"]


def test_a_job_that_does_not_prove_its_tenant_is_not_moved() -> None:
    view = RouterView(budget=lambda t: None, home=lambda tenant: 1)
    refused = hop(dumps(make_request()), view=view, signed_as=None)
    assert kinds(refused) == ["dead_letter", "telemetry"]  # the letter and its audit row


def test_the_hop_reserves_on_top_of_the_tenants_stored_snapshot() -> None:
    asked: list[str] = []
    stored = BudgetSnapshot(period="2026-11", reserved_usd=2.0, requests=4, request_offset=10)

    def budget(tenant: str) -> BudgetSnapshot:
        asked.append(tenant)
        return stored

    result = hop(dumps(make_request()), view=RouterView(budget=budget))
    assert asked == ["acme"]
    assert result.snapshot is not None
    assert result.snapshot.requests == 5 and result.snapshot.reserved_usd > 2.0


def test_a_job_over_budget_is_rejected_with_telemetry_and_its_offset_recorded() -> None:
    spent = BudgetSnapshot(period="2026-11", spent_usd=50.0)
    result = hop(
        dumps(make_request(reply_to="switchyard.replies.acme")), view=RouterView(lambda t: spent)
    )
    assert kinds(result) == ["reply", "telemetry"]
    reply = reply_of(result.outputs[0])
    assert reply.status == "rejected" and reply.error is not None
    assert reply.error.code == "budget_exhausted"
    assert result.outputs[0].topic == "switchyard.replies.acme" and result.outputs[0].headers
    assert result.snapshot is not None and result.snapshot.applied == {"requests:3": 42}
    assert result.snapshot.spent_usd == 50.0 and result.snapshot.reserved_usd == 0.0


# --- expired ------------------------------------------------------------------


def test_a_passed_deadline_is_an_expired_reply_and_telemetry_without_dispatch() -> None:
    request = make_request(reply_to="switchyard.replies.acme", deadline=NOW - timedelta(seconds=1))
    result = hop(dumps(request))
    assert kinds(result) == ["reply", "telemetry"]
    out = result.outputs[0]
    assert (out.key, out.topic, out.headers) == ("r-1", "switchyard.replies.acme", True)
    reply = reply_of(out)
    assert reply.status == "expired" and reply.error is not None
    assert reply.error.code == "deadline_expired"
    telemetry = result.outputs[1]
    assert isinstance(telemetry.message, TelemetryEvent)
    assert (telemetry.key, telemetry.topic, telemetry.headers) == ("r-1", None, False)
    assert (result.tenant, result.snapshot) == (None, None)


def test_a_deadline_still_ahead_is_routed() -> None:
    assert kinds(hop(dumps(make_request(deadline=NOW + timedelta(minutes=1))))) == ["dispatch"]


# --- pre-step -----------------------------------------------------------------


def test_a_tenant_with_a_pre_step_gets_the_raw_job_first_then_it_is_routed_prepared() -> None:
    config = configure(pre_step_topic="acme-prepare")
    raw = dumps(make_request())
    forwarded = hop(raw, config)
    assert forwarded.outputs == [
        Output("pre_step", "acme", raw, topic="acme-prepare", headers=True)
    ]
    assert forwarded.snapshot is None

    prepared = hop(raw, config, prepared=True, at=Position("prepared", 1, 7))
    assert kinds(prepared) == ["dispatch"]
    job = prepared.outputs[0].message
    assert isinstance(job, DispatchJob)
    assert job.steps == [PlanStep(kind="pre_step", detail="acme-prepare")]
    assert job.decision.plan.pre_step == "acme-prepare"
    assert prepared.snapshot is not None
    assert prepared.snapshot.applied == {"prepared:1": 7}


def test_a_tenant_without_a_pre_step_is_routed_at_once() -> None:
    assert kinds(hop(dumps(make_request()), prepared=False)) == ["dispatch"]


# --- cache --------------------------------------------------------------------


def entry_for(request: InferenceRequest) -> CachedAnswer:
    return CachedAnswer(
        key=cache_key(request),
        tenant=request.tenant,
        message=ChatMessage(role="assistant", content="cached hello"),
        model="sim-small",
        provider="sim",
        source_request_id="r-0",
        stored_at=NOW - timedelta(minutes=1),
        expires_at=NOW + timedelta(minutes=59),  # the tenant's TTL (1 h) after it was stored
    )


def cache_of(entry: CachedAnswer) -> RouterView:
    def cache(key: str, tenant: str, now: datetime) -> CachedAnswer | None:
        return entry if (key, tenant, now) == (entry.key, entry.tenant, NOW) else None

    return RouterView(budget=lambda tenant: None, cache=cache)


def test_a_cache_hit_is_answered_with_telemetry_and_no_dispatch() -> None:
    request = make_request(reply_to="switchyard.replies.acme")
    result = hop(dumps(request), configure(cache={"enabled": True}), cache_of(entry_for(request)))
    assert kinds(result) == ["reply", "telemetry"]
    reply = reply_of(result.outputs[0])
    assert reply.status == "ok" and reply.model == "sim-small" and reply.cost_usd == 0.0
    assert reply.message is not None and reply.message.text() == "cached hello"
    assert result.outputs[0].topic == "switchyard.replies.acme" and result.outputs[0].headers
    assert (result.tenant, result.snapshot) == (None, None)


def test_a_cache_miss_is_routed_with_the_miss_in_its_plan() -> None:
    request = make_request()
    other = entry_for(make_request("something else"))
    result = hop(dumps(request), configure(cache={"enabled": True}), cache_of(other))
    assert kinds(result) == ["dispatch"]
    job = result.outputs[0].message
    assert isinstance(job, DispatchJob) and job.decision.plan.cache == "miss"


def test_the_cache_is_not_read_for_a_tenant_without_it() -> None:
    request = make_request()
    assert kinds(hop(dumps(request), BASE, cache_of(entry_for(request)))) == ["dispatch"]


# --- dead letters -------------------------------------------------------------


def letter_of(output: Output) -> DeadLetter:
    assert output.kind == "dead_letter" and isinstance(output.message, DeadLetter)
    return output.message


def test_bad_json_is_dead_lettered_with_its_position_and_no_reply() -> None:
    result = hop(b"{not json")
    assert kinds(result) == ["dead_letter"]
    assert (result.outputs[0].key, result.outputs[0].headers) == (None, False)
    letter = letter_of(result.outputs[0])
    assert letter.error.code == "invalid_request"
    assert (letter.stage, letter.source_topic, letter.source_partition) == (
        "validate",
        "requests",
        3,
    )
    # Unparseable, so no tenant's policy applies: only its size and hash are kept.
    assert (letter.source_offset, letter.payload, letter.payload_bytes) == (42, "", 9)
    assert letter.payload_kept == "hash" and letter.payload_sha256 is not None
    assert letter.dead_lettered_at == NOW and letter.request_id is None
    assert result.snapshot is None


def test_an_invalid_job_with_a_salvageable_address_also_gets_an_error_reply() -> None:
    raw = b'{"request_id": "r-9", "tenant": "acme", "reply_to": "switchyard.replies.acme"}'
    result = hop(raw)
    assert kinds(result) == ["dead_letter", "reply"]
    letter = letter_of(result.outputs[0])
    assert (letter.request_id, letter.tenant, letter.reply_to) == (
        "r-9",
        "acme",
        "switchyard.replies.acme",
    )
    assert result.outputs[0].key == "r-9"
    out = result.outputs[1]
    assert (out.key, out.topic, out.headers) == ("r-9", "switchyard.replies.acme", True)
    reply = reply_of(out)
    assert reply.status == "rejected" and reply.error is not None
    assert reply.error.code == "invalid_request" and reply.tenant == "acme"


def test_an_unknown_tenant_is_dead_lettered_and_answered_on_the_default_replies() -> None:
    raw = dumps(make_request(request_id="r-5", tenant="nobody"))
    result = hop(raw, signed_as=None)  # no tenant to sign as; signed as acme it would be refused
    assert kinds(result) == ["dead_letter", "reply"]
    assert letter_of(result.outputs[0]).error.code == "unknown_tenant"
    assert result.outputs[1].topic is None
    assert reply_of(result.outputs[1]).request_id == "r-5"


def test_a_null_message_is_dead_lettered_with_an_empty_payload() -> None:
    result = hop(None)
    assert kinds(result) == ["dead_letter"]
    assert letter_of(result.outputs[0]).payload_bytes == 0


# --- settlements --------------------------------------------------------------


def settlement(tenant: str = "acme") -> bytes:
    return dumps(SpendSettlement(request_id="r-1", tenant=tenant, reserved_usd=1.0, actual_usd=0.4))


def test_a_settlement_releases_the_reservation_and_counts_the_spend_once() -> None:
    stored = BudgetSnapshot(period="2026-11", reserved_usd=1.5, spent_usd=2.0)
    result = settle_hop(
        settlement(), Position("settlements", 0, 8), BASE, lambda tenant: stored, NOW
    )
    assert result.outputs == [] and result.tenant == "acme"
    assert result.snapshot == stored.model_copy(
        update={"reserved_usd": 0.5, "spent_usd": 2.4, "applied": {"settlements:0": 8}}
    )
    again = settle_hop(
        settlement(), Position("settlements", 0, 8), BASE, lambda tenant: result.snapshot, NOW
    )
    assert again.snapshot == result.snapshot


def test_a_settlement_for_a_tenant_no_longer_configured_changes_nothing() -> None:
    result = settle_hop(settlement("gone"), SETTLED_AT, BASE, lambda tenant: None, NOW)
    assert (result.outputs, result.tenant, result.snapshot) == ([], None, None)


def test_a_settlement_that_does_not_validate_is_dead_lettered_not_raised() -> None:
    for raw in (None, b"not json", b'{"tenant": "acme"}', b'{"k":' * 300 + b"1" + b"}" * 300):
        result = settle_hop(raw, SETTLED_AT, BASE, lambda tenant: None, NOW)
        assert kinds(result) == ["dead_letter"] and result.snapshot is None
        letter = letter_of(result.outputs[0])
        assert (letter.stage, letter.source_topic, letter.source_offset) == (
            "settle",
            "settlements",
            8,
        )
        assert letter.error.code == "invalid_request"
        dumps(letter)


# --- reply_to -------------------------------------------------------------------

INTERNAL = frozenset(
    {"switchyard.settlements", "switchyard.dispatch", "switchyard-router-budget-changelog"}
)


def replies_view(existing: set[str]) -> RouterView:
    topics = ReplyTopics("switchyard", "switchyard.replies", INTERNAL, existing.__contains__)
    return RouterView(budget=lambda tenant: None, replies=topics)


def test_reply_to_an_internal_unknown_or_missing_topic_is_refused_before_routing() -> None:
    view = replies_view({"switchyard.replies.acme", "switchyard.replies.globex", *INTERNAL})
    for reply_to in (
        *INTERNAL,
        "__consumer_offsets",
        "elsewhere",
        "switchyard.replies.globex",
        "switchyard.replies.acme2",
    ):
        result = hop(dumps(make_request(reply_to=reply_to, request_id="r-7")), view=view)
        assert kinds(result) == ["dead_letter", "reply"], reply_to
        assert letter_of(result.outputs[0]).error.code == "reply_to_refused"
        assert result.outputs[1].topic is None  # the shared replies topic
        assert reply_of(result.outputs[1]).error.code == "reply_to_refused"  # type: ignore[union-attr]
        assert result.snapshot is None


def test_an_allowed_reply_topic_must_exist_and_the_shared_one_is_always_allowed() -> None:
    allowed = dumps(make_request(reply_to="switchyard.replies.acme"))
    assert kinds(hop(allowed, view=replies_view(set()))) == ["dead_letter", "reply"]
    assert kinds(hop(allowed, view=replies_view({"switchyard.replies.acme"}))) == ["dispatch"]
    shared = dumps(make_request(reply_to="switchyard.replies"))
    assert kinds(hop(shared, view=replies_view(set()))) == ["dispatch"]


def test_a_tenants_reply_topic_patterns_are_its_own() -> None:
    config = configure(reply_topics=["acme.*", "{namespace}.out.{tenant}"])
    view = replies_view({"acme.answers", "switchyard.out.acme", "switchyard.replies.acme"})
    for reply_to, outcome in (
        ("acme.answers", "dispatch"),
        ("switchyard.out.acme", "dispatch"),
        ("switchyard.replies.acme", "dead_letter"),
    ):
        result = hop(dumps(make_request(reply_to=reply_to)), config=config, view=view)
        assert kinds(result)[0] == outcome, reply_to


def test_an_invalid_jobs_error_reply_never_goes_to_a_refused_reply_to() -> None:
    raw = b'{"request_id": "r-9", "tenant": "acme", "reply_to": "switchyard.settlements"}'
    result = hop(raw, view=replies_view(set(INTERNAL)))
    assert kinds(result) == ["dead_letter", "reply"]
    assert letter_of(result.outputs[0]).reply_to == "switchyard.settlements"
    assert result.outputs[1].topic is None


def test_a_failed_hop_becomes_a_dead_letter_and_a_reply() -> None:
    raw = dumps(make_request(request_id="r-3"))
    outputs = failed_hop(raw, RecursionError("deep"), AT, BASE, NOW, ReplyTopics("s", "s.r"))
    assert [o.kind for o in outputs] == ["dead_letter", "reply"]
    letter = letter_of(outputs[0])
    assert (letter.error.code, letter.stage, letter.request_id) == ("unprocessable", "route", "r-3")
    assert "RecursionError" in letter.error.message
    assert reply_of(outputs[1]).error.code == "unprocessable"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("stored", "expires"),
    [
        (NOW - timedelta(minutes=1), datetime(2099, 1, 1, tzinfo=UTC)),  # past the tenant's TTL
        (NOW + timedelta(minutes=5), NOW + timedelta(minutes=10)),  # stored in the future
    ],
)
def test_a_cache_entry_beyond_the_tenants_ttl_never_serves(
    stored: datetime, expires: datetime
) -> None:
    request = make_request()
    forged = entry_for(request).model_copy(update={"stored_at": stored, "expires_at": expires})
    result = hop(dumps(request), configure(cache={"enabled": True}), cache_of(forged))
    assert kinds(result) == ["dispatch"]


def test_a_negative_settlement_is_dead_lettered_not_applied() -> None:
    raw = orjson.dumps(
        {"request_id": "r-1", "tenant": "acme", "reserved_usd": 0.0, "actual_usd": -1000.0}
    )
    stored = BudgetSnapshot(period="2026-11", spent_usd=2.0)
    result = settle_hop(raw, SETTLED_AT, BASE, lambda tenant: stored, NOW)
    assert kinds(result) == ["dead_letter"] and result.snapshot is None
