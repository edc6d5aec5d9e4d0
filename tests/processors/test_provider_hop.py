"""The provider hop's decision, driven with plain objects: scripted calls, a hand-set clock."""

import dataclasses
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from processors.circuit import CircuitBreaker
from processors.dispatch import RETRY_TIERS_S, EndpointGate
from processors.dispatch_check import undecodable
from processors.outputs import Output
from processors.provider_hop import (
    CallResult,
    HopContext,
    HopResult,
    ModelCall,
    ShadowCall,
    provider_hop,
    shadow_outputs,
)
from schemas.answer import AnsweredRequest
from schemas.cache import CachedAnswer
from schemas.config import CacheSettings, SwitchyardConfig
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob, SourcePosition
from schemas.errors import ProviderUnavailable
from schemas.messages import Attempt, ChatMessage, InferenceReply, Usage
from schemas.plan import AnswerCheck, PlanStep, RoutePlan
from schemas.runtime_settings import BreakerPolicy
from schemas.settlement import SpendSettlement
from schemas.telemetry import TelemetryEvent
from tests.helpers import dispatch_job, sample_config

T0 = 1_800_000_000.0
NOW = datetime.fromtimestamp(T0, UTC)
SOURCE = SourcePosition(partition=3, offset=17)
REQUESTS = "ns.requests"
ESTIMATE = 0.004


@dataclass(frozen=True)
class Answer:
    message: ChatMessage
    usage: Usage
    logprobs: list[float] | None = None


class Clock:
    """Epoch seconds; tests move it by hand."""

    def __init__(self, at: float = T0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def config(max_rounds: int = 4, cache: bool = False) -> SwitchyardConfig:
    base = sample_config()
    dispatch = base.dispatch.model_copy(
        update={"retry": base.dispatch.retry.model_copy(update={"max_rounds": max_rounds})}
    )
    tenants = dict(base.tenants)
    tenants["acme"] = tenants["acme"].model_copy(update={"cache": CacheSettings(enabled=cache)})
    return base.model_copy(update={"dispatch": dispatch, "tenants": tenants})


def gates(cfg: SwitchyardConfig, open_s: float = 5.0) -> dict[str, EndpointGate]:
    policy = BreakerPolicy(failure_threshold=1, open_s=open_s)
    return {m.name: EndpointGate(CircuitBreaker(policy)) for m in cfg.models}


def context(
    cfg: SwitchyardConfig | None = None,
    clock: Callable[[], float] | None = None,
    endpoints: dict[str, EndpointGate] | None = None,
) -> HopContext:
    cfg = cfg or config()
    return HopContext(cfg, endpoints or gates(cfg), clock or Clock(), random.Random(5), REQUESTS)


def job(chain: list[str], plan: RoutePlan | None = None, **request: Any) -> DispatchJob:
    return dispatch_job(NOW, chain, plan, SOURCE, ESTIMATE, **request)


def ok(model: str, text: str = "the answer", cost: float = 0.002) -> CallResult:
    attempt = Attempt(model=model, provider="sim", outcome="ok", latency_ms=40, cost_usd=cost)
    usage = Usage(input_tokens=10, output_tokens=5)
    return CallResult(attempt, Answer(ChatMessage(role="assistant", content=text), usage))


def down(model: str) -> CallResult:
    error = ProviderUnavailable(f"sim/{model}: 503").info()
    return CallResult(
        Attempt(model=model, provider="sim", outcome="unavailable", latency_ms=3, error=error)
    )


@dataclass
class Driven:
    calls: list[ModelCall]
    result: HopResult

    def kinds(self) -> list[str]:
        return [o.kind for o in self.result.outputs]

    def one(self, kind: str) -> Output:
        (found,) = [o for o in self.result.outputs if o.kind == kind]
        return found

    def reply(self) -> InferenceReply:
        message = self.one("reply").message
        assert isinstance(message, InferenceReply)
        return message


def drive(
    job: DispatchJob,
    ctx: HopContext,
    script: dict[str, CallResult],
    answered: AnsweredRequest | None = None,
    after_call: Callable[[], None] = lambda: None,
) -> Driven:
    """Run the flow as a worker would, answering each call from ``script``."""
    flow = provider_hop(job, answered, ctx)
    calls: list[ModelCall] = []
    try:
        call = next(flow)
        while True:
            calls.append(call)
            after_call()
            call = flow.send(script[call.model])
    except StopIteration as stop:
        return Driven(calls, stop.value)


# --- answered ------------------------------------------------------------------


def test_a_fallback_answers_after_the_chosen_model_fails() -> None:
    cfg = config()
    driven = drive(
        job(["sim-small", "sim-medium"]),
        context(cfg),
        {"sim-small": down("sim-small"), "sim-medium": ok("sim-medium", cost=0.003)},
    )
    assert [c.model for c in driven.calls] == ["sim-small", "sim-medium"]
    assert driven.kinds() == ["reply", "answer", "telemetry", "settlement"]
    assert [(o.key, o.headers, o.topic) for o in driven.result.outputs] == [
        ("r-1", True, None),
        ("acme|r-1", False, None),  # the ledger's key: (tenant, request_id)
        ("r-1", False, None),
        ("acme", False, None),
    ]
    reply = driven.reply()
    assert reply.status == "ok"
    assert reply.model == "sim-medium"
    assert reply.region == cfg.model("sim-medium").region  # type: ignore[union-attr]
    assert reply.message is not None and reply.message.text() == "the answer"
    assert [a.outcome for a in reply.attempts] == ["unavailable", "ok"]
    assert reply.finished_at == NOW
    assert driven.one("settlement").message == SpendSettlement(
        request_id="r-1", tenant="acme", reserved_usd=ESTIMATE, actual_usd=0.003
    )
    entry = driven.one("answer").message
    assert entry == driven.result.remember
    assert entry == AnsweredRequest(
        request_id="r-1", sources=[SOURCE], reply=reply, answered_at=NOW
    )
    event = driven.one("telemetry").message
    assert isinstance(event, TelemetryEvent) and event.request is not None
    assert event.request.model == "sim-medium" and event.request.attempts == 2
    assert driven.result.shadow is None


def test_the_reply_goes_to_the_requests_reply_to_topic() -> None:
    reply_to = "switchyard.replies.acme"  # the tenant's own reply topic, which it may use
    driven = drive(job(["sim-small"], reply_to=reply_to), context(), {"sim-small": ok("sim-small")})
    assert driven.one("reply").topic == reply_to


def test_a_failed_cascade_check_escalates_to_the_next_rung() -> None:
    plan = RoutePlan(
        cascade=["sim-small", "sim-medium"], check=AnswerCheck(kind="regex", pattern="^yes")
    )
    driven = drive(
        job(["sim-small", "sim-medium"], plan),
        context(),
        {
            "sim-small": ok("sim-small", "no", cost=0.001),
            # the top rung's answer stands unchecked
            "sim-medium": ok("sim-medium", "maybe", cost=0.003),
        },
    )
    reply = driven.reply()
    assert [c.model for c in driven.calls] == ["sim-small", "sim-medium"]
    assert [(a.model, a.outcome) for a in reply.attempts] == [
        ("sim-small", "rejected"),
        ("sim-medium", "ok"),
    ]
    assert reply.steps == [
        PlanStep(kind="check_failed", model="sim-small", detail="does not match pattern")
    ]
    assert reply.message is not None and reply.message.text() == "maybe"
    assert reply.cost_usd == 0.004  # the refused rung's cost counts
    assert reply.model == "sim-medium"


@pytest.mark.parametrize(("p_good", "escalates"), [(0.59, True), (0.6, False), (0.9, False)])
def test_a_learned_check_escalates_exactly_under_the_routers_threshold(
    p_good: float, escalates: bool
) -> None:
    """The router put the calibrated threshold in the plan; the provider asks the learned
    check about the answer of the rung it just called, and about nothing else."""
    asked: list[tuple[str, str]] = []

    def judge(model: str, prompt: str, task: str, answer: str) -> float | None:
        asked.append((model, answer))
        return p_good

    plan = RoutePlan(
        cascade=["sim-small", "sim-medium"], check=AnswerCheck(kind="learned", threshold=0.6)
    )
    driven = drive(
        job(["sim-small", "sim-medium"], plan),
        dataclasses.replace(context(), judge=judge),
        {"sim-small": ok("sim-small", "cheap answer"), "sim-medium": ok("sim-medium", "dear")},
    )
    assert asked == [("sim-small", "cheap answer")]  # never the rung not (yet) called
    assert [c.model for c in driven.calls] == (
        ["sim-small", "sim-medium"] if escalates else ["sim-small"]
    )
    step = driven.reply().steps[0]
    assert step.kind == ("check_failed" if escalates else "check_passed")
    assert step.detail == f"P(good) {p_good:.3f} vs threshold 0.600"


def test_a_passed_cascade_check_answers_from_the_cheap_rung() -> None:
    plan = RoutePlan(cascade=["sim-small", "sim-medium"], check=AnswerCheck(kind="regex"))
    driven = drive(
        job(["sim-small", "sim-medium"], plan), context(), {"sim-small": ok("sim-small")}
    )
    assert [c.model for c in driven.calls] == ["sim-small"]
    assert driven.reply().steps == [
        PlanStep(kind="check_passed", model="sim-small", detail="matches pattern")
    ]


def test_a_cache_miss_stores_the_answer_and_the_shadow_is_asked_after() -> None:
    plan = RoutePlan(cache="miss", shadow="sim-large")
    driven = drive(
        job(["sim-small"], plan), context(config(cache=True)), {"sim-small": ok("sim-small")}
    )
    assert driven.kinds() == ["reply", "answer", "telemetry", "settlement", "cache"]
    stored = driven.one("cache").message
    assert isinstance(stored, CachedAnswer)
    assert driven.one("cache").key == stored.key
    assert stored.model == "sim-small" and stored.source_request_id == "r-1"
    assert driven.reply().steps == [
        PlanStep(kind="cache_store", model="sim-small"),
        PlanStep(kind="shadow", model="sim-large"),
    ]
    assert driven.result.shadow == ShadowCall("sim-large", "sim-small", "the answer")


def test_no_shadow_when_the_shadow_model_answered() -> None:
    plan = RoutePlan(shadow="sim-small")
    driven = drive(job(["sim-small"], plan), context(), {"sim-small": ok("sim-small")})
    assert driven.result.shadow is None
    assert driven.reply().steps == []


def test_the_shadows_outcome_becomes_a_telemetry_row() -> None:
    shadow = ShadowCall("sim-large", "sim-small", "The  answer")
    (output,) = shadow_outputs(job(["sim-small"]), shadow, ok("sim-large", cost=0.01), NOW)
    assert (output.kind, output.key) == ("telemetry", "r-1")
    assert isinstance(output.message, TelemetryEvent)
    (row,) = output.message.shadow
    assert (row.primary_model, row.shadow_model, row.outcome) == ("sim-small", "sim-large", "ok")
    assert row.agrees is True  # case and whitespace aside
    assert (row.cost_usd, row.output_tokens, row.finished_at) == (0.01, 5, NOW)
    (failed,) = shadow_outputs(job(["sim-small"]), shadow, down("sim-large"), NOW)
    assert isinstance(failed.message, TelemetryEvent)
    assert failed.message.shadow[0].agrees is False


# --- parked, exhausted, late ----------------------------------------------------


def test_a_job_whose_only_endpoint_is_open_is_parked_on_the_tier_of_its_wait() -> None:
    cfg = config()
    endpoints = gates(cfg, open_s=40.0)
    endpoints["sim-small"].breaker.record_failure(T0, "provider_unavailable")
    driven = drive(job(["sim-small"]), context(cfg, endpoints=endpoints), {})
    assert driven.calls == []
    (output,) = driven.result.outputs
    assert (output.kind, output.key, output.headers) == ("retry", "r-1", True)
    assert output.retry_tier == RETRY_TIERS_S.index(30)  # 40 s: the longest tier within it
    parked = output.message
    assert isinstance(parked, DispatchJob)
    assert parked.round == 1
    assert parked.not_before == NOW + timedelta(seconds=40)
    assert parked.parked_s == 40.0
    assert parked.attempts == []  # a round that only met open circuits made no call
    assert driven.result.remember is None


def test_exhausted_retries_end_in_a_dead_letter_with_every_attempt() -> None:
    driven = drive(
        job(["sim-small", "sim-medium"]),
        context(config(max_rounds=1)),
        {"sim-small": down("sim-small"), "sim-medium": down("sim-medium")},
    )
    assert driven.kinds() == ["reply", "answer", "telemetry", "settlement", "dead_letter"]
    reply = driven.reply()
    assert reply.status == "error"
    assert reply.error is not None and reply.error.code == "provider_unavailable"
    letter = driven.one("dead_letter").message
    assert isinstance(letter, DeadLetter)
    assert driven.one("dead_letter").key == "r-1"
    assert letter.attempts == reply.attempts
    assert [a.model for a in letter.attempts] == ["sim-small", "sim-medium"]
    assert letter.error == reply.error
    assert (letter.stage, letter.source_topic) == ("dispatch", REQUESTS)
    assert (letter.source_partition, letter.source_offset) == (SOURCE.partition, SOURCE.offset)
    assert (letter.request_id, letter.tenant, letter.payload_truncated) == ("r-1", "acme", False)
    assert orjson.loads(letter.payload)["request_id"] == "r-1"


def test_an_answer_after_the_deadline_is_expired_and_its_cost_settled() -> None:
    clock = Clock()

    def slow_call() -> None:
        clock.at += 20  # the call outlives the 10 s deadline

    driven = drive(
        job(
            ["sim-small"],
            RoutePlan(cache="miss", shadow="sim-large"),
            deadline=NOW + timedelta(seconds=10),
        ),
        context(config(cache=True), clock),
        {"sim-small": ok("sim-small", cost=0.002)},
        after_call=slow_call,
    )
    reply = driven.reply()
    assert reply.status == "expired"
    assert reply.message is None
    assert reply.error is not None and reply.error.code == "deadline_expired"
    assert reply.cost_usd == 0.002
    assert reply.finished_at == NOW + timedelta(seconds=20)
    settlement = driven.one("settlement").message
    assert isinstance(settlement, SpendSettlement) and settlement.actual_usd == 0.002
    # neither cached nor shadowed: nobody got the answer
    assert driven.kinds() == ["reply", "answer", "telemetry", "settlement"]
    assert driven.result.shadow is None


# --- duplicates, undecodable ----------------------------------------------------


def ledger_entry(status: str = "ok", age_s: float = 10.0) -> AnsweredRequest:
    reply = InferenceReply.model_validate(
        {"request_id": "r-1", "tenant": "acme", "status": status, "finished_at": NOW}
    )
    first = SourcePosition(partition=3, offset=2)
    at = NOW - timedelta(seconds=age_s)
    return AnsweredRequest(request_id="r-1", sources=[first], reply=reply, answered_at=at)


def test_a_request_sent_again_gets_the_same_reply_and_a_zero_settlement() -> None:
    answered = ledger_entry()
    driven = drive(job(["sim-small"]), context(), {}, answered)
    assert driven.calls == []
    assert driven.kinds() == ["reply", "answer", "settlement"]
    assert driven.one("reply").message == answered.reply
    assert driven.one("reply").headers is True
    entry = driven.one("answer").message
    assert isinstance(entry, AnsweredRequest)
    assert entry.sources == [*answered.sources, SOURCE]
    assert entry == driven.result.remember
    assert driven.one("settlement").message == SpendSettlement(
        request_id="r-1", tenant="acme", reserved_usd=ESTIMATE, actual_usd=0.0
    )


def test_a_failed_answer_sent_again_is_retried() -> None:
    driven = drive(
        job(["sim-small"]), context(), {"sim-small": ok("sim-small")}, ledger_entry("error")
    )
    assert [c.model for c in driven.calls] == ["sim-small"]
    assert driven.reply().status == "ok"


def test_a_redelivered_answered_job_produces_nothing() -> None:
    answered = ledger_entry().model_copy(update={"sources": [SOURCE]})
    driven = drive(job(["sim-small"]), context(), {}, answered)
    assert driven.calls == []
    assert driven.result == HopResult([])


def test_an_undecodable_job_is_dead_lettered_as_its_size_and_hash() -> None:
    (output,) = undecodable(b"not a job", "ns.dispatch", 4, 9, 3, NOW)
    assert (output.kind, output.key, output.headers) == ("dead_letter", None, False)
    letter = output.message
    assert isinstance(letter, DeadLetter)
    assert letter.error.code == "invalid_request"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "ns.dispatch",
        4,
        9,
    )
    # No tenant to ask: the content is not kept, only its size and SHA-256.
    assert (letter.payload, letter.payload_bytes, letter.payload_kept) == ("", 9, "hash")
    assert letter.payload_sha256 == hashlib.sha256(b"not a job").hexdigest()
    assert letter.dead_lettered_at == NOW
