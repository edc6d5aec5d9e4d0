"""The provider hop re-checks a dispatch job against config and policy before any call."""

import random
from datetime import UTC, datetime
from typing import Any

from processors.circuit import CircuitBreaker
from processors.dispatch import EndpointGate
from processors.dispatch_check import recheck
from processors.provider_hop import CallResult, HopContext, HopResult, ModelCall, provider_hop
from processors.reply_topics import ReplyTopics
from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob, SourcePosition
from schemas.errors import DispatchRefused, ProviderUnavailable
from schemas.messages import Attempt, ChatMessage, InferenceReply, Usage
from schemas.plan import PlanStep, RoutePlan
from schemas.runtime_settings import BreakerPolicy
from schemas.settlement import SpendSettlement
from tests.helpers import dispatch_job, sample_config

T0 = 1_800_000_000.0
NOW = datetime.fromtimestamp(T0, UTC)
SOURCE = SourcePosition(partition=1, offset=5)
ESTIMATE = 0.004
INTERNAL = frozenset({"switchyard.dispatch", "switchyard.settlements", "switchyard.answers"})
EXISTING = {"switchyard.replies.acme", "switchyard.replies.globex", *INTERNAL}
REPLIES = ReplyTopics("switchyard", "switchyard.replies", INTERNAL, EXISTING.__contains__)
CONFIG = sample_config()


class Answer:
    def __init__(self, text: str) -> None:
        self.message = ChatMessage(role="assistant", content=text)
        self.usage = Usage(input_tokens=10, output_tokens=5)
        self.logprobs: list[float] | None = None


def ok(model: str) -> CallResult:
    attempt = Attempt(model=model, provider="sim", outcome="ok", latency_ms=40, cost_usd=0.002)
    return CallResult(attempt, Answer(f"answer from {model}"))


def down(model: str) -> CallResult:
    error = ProviderUnavailable(f"sim/{model}: 503").info()
    attempt = Attempt(model=model, provider="sim", outcome="unavailable", latency_ms=3, error=error)
    return CallResult(attempt)


def context(config: SwitchyardConfig = CONFIG) -> HopContext:
    policy = BreakerPolicy(failure_threshold=1, open_s=5.0)
    gates = {m.name: EndpointGate(CircuitBreaker(policy)) for m in config.models}
    return HopContext(config, gates, lambda: T0, random.Random(5), "switchyard.requests", REPLIES)


def job(chain: list[str], plan: RoutePlan | None = None, **request: Any) -> DispatchJob:
    return dispatch_job(NOW, chain, plan, SOURCE, ESTIMATE, **request)


def drive(
    job: DispatchJob, answers: dict[str, CallResult] | None = None, **kw: Any
) -> tuple[list[str], HopResult]:
    """The models called (each answered from ``answers``, ok by default) and the result."""
    flow = provider_hop(job, kw.get("answered"), kw.get("ctx") or context())
    called: list[str] = []
    try:
        call: ModelCall = next(flow)
        while True:
            called.append(call.model)
            call = flow.send((answers or {}).get(call.model) or ok(call.model))
    except StopIteration as stop:
        return called, stop.value


def kinds(result: HopResult) -> list[str]:
    return [o.kind for o in result.outputs]


def letter_of(result: HopResult) -> DeadLetter:
    (letter,) = [o.message for o in result.outputs if o.kind == "dead_letter"]
    assert isinstance(letter, DeadLetter)
    return letter


def reply_of(result: HopResult) -> tuple[InferenceReply, str | None]:
    (output,) = [o for o in result.outputs if o.kind == "reply"]
    assert isinstance(output.message, InferenceReply)
    return output.message, output.topic


def assert_refused(result: HopResult, tenant: str = "acme") -> InferenceReply:
    """Dead-lettered, answered rejected on the shared replies topic, settled at zero."""
    assert kinds(result) == ["dead_letter", "reply", "telemetry", "settlement"]
    assert letter_of(result).error.code == "dispatch_refused"
    reply, topic = reply_of(result)
    assert topic is None  # the shared replies topic, never the job's reply_to
    assert reply.status == "rejected" and reply.tenant == tenant
    assert reply.error is not None and reply.error.code == "dispatch_refused"
    (settled,) = [o.message for o in result.outputs if o.kind == "settlement"]
    assert settled == SpendSettlement(
        request_id="r-1", tenant=tenant, reserved_usd=ESTIMATE, actual_usd=0.0
    )
    assert result.remember is None  # the ledger does not hold a refusal
    return reply


def test_a_job_for_an_unconfigured_tenant_is_never_called_only_dead_lettered() -> None:
    called, result = drive(job(["sim-small"], tenant="mallory"))
    assert called == []
    assert kinds(result) == ["dead_letter"]  # no reply, no settlement: no such tenant
    letter = letter_of(result)
    assert letter.error.code == "dispatch_refused" and letter.tenant == "mallory"
    assert letter.payload_kept == "hash"  # no tenant policy keeps its payload


def test_a_restricted_job_never_reaches_a_model_not_cleared_for_it() -> None:
    restricted = job(["sim-large", "sim-local"], data_classification="restricted")
    called, result = drive(restricted)
    assert called == ["sim-local"]
    reply, _ = reply_of(result)
    assert reply.status == "ok" and reply.model == "sim-local"
    dropped = PlanStep(kind="dropped", model="sim-large", detail="not cleared for restricted data")
    assert reply.steps[0] == dropped


def test_a_tenants_regions_are_enforced_again_at_the_provider() -> None:
    called, result = drive(job(["sim-small", "sim-medium"], tenant="globex"))
    assert called == ["sim-medium"]
    reply, _ = reply_of(result)
    assert reply.steps[0].model == "sim-small"
    assert reply.steps[0].detail == "region us not allowed by tenant"


def test_a_chain_with_no_eligible_model_is_never_called() -> None:
    called, result = drive(job(["sim-small", "sim-large"], data_classification="restricted"))
    assert called == []
    reply = assert_refused(result)
    assert reply.error is not None and "sim-large: not cleared" in reply.error.message


def test_a_model_outside_the_catalogue_is_dropped() -> None:
    called, result = drive(job(["gpt-unknown", "sim-small"]))
    assert called == ["sim-small"]
    reply, _ = reply_of(result)
    assert reply.steps[0] == PlanStep(
        kind="dropped", model="gpt-unknown", detail="not in the catalogue"
    )


def test_a_refused_reply_to_is_never_called_and_answered_on_the_shared_topic() -> None:
    for reply_to in (
        "switchyard.settlements",  # internal
        "switchyard.replies.globex",  # another tenant's
        "switchyard.replies.acme-new",  # not the tenant's pattern
    ):
        called, result = drive(job(["sim-small"], reply_to=reply_to))
        assert called == []
        assert_refused(result)


def test_a_reply_to_that_does_not_exist_is_refused() -> None:
    tenants = dict(CONFIG.tenants)
    tenants["acme"] = tenants["acme"].model_copy(
        update={"reply_topics": ["{namespace}.replies.{tenant}*"]}
    )
    ctx = context(CONFIG.model_copy(update={"tenants": tenants}))
    called, result = drive(job(["sim-small"], reply_to="switchyard.replies.acme-x"), ctx=ctx)
    assert called == []
    assert_refused(result)
    called, _ = drive(job(["sim-small"], reply_to="switchyard.replies.acme"), ctx=ctx)
    assert called == ["sim-small"]


def test_a_refused_job_is_not_answered_from_the_ledger_on_its_reply_to() -> None:
    stored = drive(job(["sim-small"]))[1].remember
    assert stored is not None
    again = job(["sim-small"], reply_to="switchyard.answers")  # the producer sent it again
    again = again.model_copy(update={"source": SourcePosition(partition=1, offset=9)})
    called, result = drive(again, answered=stored)
    assert called == []
    assert_refused(result)


def test_a_refused_redelivery_of_an_answered_submission_is_only_dead_lettered() -> None:
    stored = drive(job(["sim-small"]))[1].remember
    assert stored is not None
    forged = job(["sim-small"], reply_to="switchyard.dispatch")
    called, result = drive(forged, answered=stored)
    assert called == [] and kinds(result) == ["dead_letter"]


def test_a_negative_or_mismatched_estimate_or_decision_is_refused() -> None:
    negative = dispatch_job(NOW, ["sim-small"], None, SOURCE, -5.0)
    called, result = drive(negative)
    assert called == []
    (settled,) = [o.message for o in result.outputs if o.kind == "settlement"]
    assert isinstance(settled, SpendSettlement) and settled.reserved_usd == 0.0
    assert letter_of(result).error.code == "dispatch_refused"
    valid = job(["sim-small"])
    other = valid.decision.model_copy(update={"tenant": "globex"})
    called, result = drive(valid.model_copy(update={"decision": other}))
    assert called == [] and letter_of(result).error.code == "dispatch_refused"


def test_an_ineligible_shadow_is_not_asked() -> None:
    plan = RoutePlan(shadow="sim-large")
    called, result = drive(job(["sim-local"], plan, data_classification="restricted"))
    assert called == ["sim-local"]
    assert result.shadow is None
    _, result = drive(job(["sim-local"], plan))
    assert result.shadow is not None and result.shadow.model == "sim-large"


def test_latency_limits_are_left_to_the_router() -> None:
    called, _ = drive(job(["sim-small"], max_latency_ms=1))
    assert called == ["sim-small"]


def test_a_valid_job_is_called_as_routed() -> None:
    valid = job(["sim-small", "sim-medium"], reply_to="switchyard.replies.acme")
    assert recheck(valid, CONFIG, REPLIES) is valid
    called, result = drive(valid, {"sim-small": down("sim-small")})
    assert called == ["sim-small", "sim-medium"]
    reply, topic = reply_of(result)
    assert topic == "switchyard.replies.acme" and reply.model == "sim-medium"
    assert all(step.kind != "dropped" for step in reply.steps)


def test_recheck_names_why_the_whole_job_is_refused() -> None:
    refused = recheck(job(["sim-small"], tenant="mallory"), CONFIG, REPLIES)
    assert isinstance(refused, DispatchRefused)
    assert refused.message == "tenant 'mallory' is not configured"
