from datetime import UTC, datetime

from processors.dispatch import next_model
from processors.errors import ContextTooLong, ProviderRejected, ProviderUnavailable
from schemas.decision import RoutingDecision
from schemas.messages import Attempt

DECISION = RoutingDecision(
    request_id="r",
    tenant="t",
    strategy="s",
    task="chat",
    task_source="default",
    quality="balanced",
    chosen_model="a",
    fallback_models=["b", "c"],
    estimated_cost_usd=0.0,
    budget_spent_usd=0.0,
    budget_limit_usd=None,
    decided_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def failed(model: str, error: Exception) -> Attempt:
    info = error.info()  # type: ignore[attr-defined]
    return Attempt(model=model, provider="p", outcome="error", latency_ms=1, error=info)


def test_first_call_goes_to_chosen_model() -> None:
    assert next_model(DECISION, []) == "a"


def test_retryable_failure_falls_back_in_order() -> None:
    attempts = [failed("a", ProviderUnavailable("down"))]
    assert next_model(DECISION, attempts) == "b"
    attempts.append(failed("b", ProviderUnavailable("down")))
    assert next_model(DECISION, attempts) == "c"
    attempts.append(failed("c", ProviderUnavailable("down")))
    assert next_model(DECISION, attempts) is None


def test_context_overflow_falls_back_but_rejection_stops() -> None:
    assert next_model(DECISION, [failed("a", ContextTooLong("too long"))]) == "b"
    assert next_model(DECISION, [failed("a", ProviderRejected("bad key"))]) is None


def test_success_ends_the_job() -> None:
    ok = Attempt(model="a", provider="p", outcome="ok", latency_ms=1)
    assert next_model(DECISION, [ok]) is None
