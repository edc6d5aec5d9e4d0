"""What each hop's span says, decided from its outputs without the OpenTelemetry SDK."""

from datetime import UTC, datetime, timedelta

from processors.budget import Position
from processors.outputs import Output
from processors.router_hop import RouterView, route_hop
from processors.trace_view import attempt_view, finish_view, job_view, route_view
from schemas.codec import dumps
from schemas.config import SwitchyardConfig
from schemas.errors import ProviderUnavailable
from schemas.messages import Attempt, Usage
from schemas.plan import PlanStep
from tests.helpers import (
    demo_secrets,
    dispatch_job,
    make_request,
    sample_config,
    signed_as,
    with_tenant,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
PROMPT = "the merger closes on Friday"
POSITION = Position("sy.requests", 0, 7)


def _routed(config: SwitchyardConfig | None = None) -> list[Output]:
    """What the router hop sends for one signed acme job."""
    config = config or sample_config()
    raw = dumps(make_request(PROMPT, max_tokens=16))
    view = RouterView(lambda tenant: None, secrets=demo_secrets(config))
    headers = signed_as("acme", raw, NOW)
    return route_hop(raw, headers, POSITION, False, config, view, NOW, lambda: 0.1).outputs


def test_a_routed_job_shows_classify_policy_strategy_and_budget_in_order() -> None:
    view = route_view(_routed())
    assert [name for name, _ in view.events] == ["classify", "policy", "strategy", "budget"]
    assert view.attributes["switchyard.outcome"] == "dispatched"
    assert view.attributes["switchyard.model"] == "sim-small"
    assert view.error is None
    events = dict(view.events)
    assert events["classify"]["switchyard.task"] == "chat"
    assert events["strategy"]["switchyard.fallbacks"] == ["sim-medium", "sim-large"]
    assert events["budget"]["switchyard.budget_limit_usd"] == 50
    assert float(str(events["budget"]["switchyard.estimated_cost_usd"])) > 0
    assert "merger" not in repr(view)


def test_a_job_over_budget_is_a_rejection_with_its_code() -> None:
    config = with_tenant(sample_config(), "acme", budget_usd=0.000000001)
    view = route_view(_routed(config))
    assert view.attributes["switchyard.outcome"] == "rejected"
    assert view.error == view.attributes["error.type"] == "budget_exhausted"
    assert [name for name, _ in view.events] == ["classify", "policy", "strategy"]


def test_a_dead_letter_and_a_replay_say_so() -> None:
    unsigned = route_hop(
        b"not json", {}, POSITION, False, sample_config(), RouterView(lambda t: None), NOW, _ms
    )
    letter = route_view(unsigned.outputs)
    assert letter.attributes["switchyard.outcome"] == "dead_lettered"
    assert letter.error == "invalid_request"
    assert route_view([]).attributes == {"switchyard.outcome": "replayed"}


def _ms() -> float:
    return 0.0


def test_attempt_spans_follow_the_genai_conventions() -> None:
    ok = Attempt(model="sim-medium", provider="sim", outcome="ok", latency_ms=9, cost_usd=0.002)
    view = attempt_view(ok, 2, "acme", "gpt-x", Usage(input_tokens=30, output_tokens=12))
    assert view.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "sim",
        "gen_ai.system": "sim",
        "gen_ai.request.model": "gpt-x",
        "gen_ai.response.model": "gpt-x",
        "gen_ai.usage.input_tokens": 30,
        "gen_ai.usage.output_tokens": 12,
        "switchyard.model": "sim-medium",
        "switchyard.tenant": "acme",
        "switchyard.attempt": 2,
        "switchyard.round": 0,
        "switchyard.outcome": "ok",
        "switchyard.cost_usd": 0.002,
    }
    error = ProviderUnavailable("sim/sim-small: HTTP 500 quoting " + PROMPT).info()
    failed = Attempt(model="sim-small", provider="sim", outcome="unavailable", latency_ms=3,
                     error=error)  # fmt: skip
    view = attempt_view(failed, 1, "acme", "sim-small", None)
    assert view.error == view.attributes["error.type"] == "provider_unavailable"
    assert "gen_ai.usage.input_tokens" not in view.attributes
    assert "merger" not in repr(view)  # an error's message may quote the prompt


def test_a_provider_run_ends_in_a_reply_or_a_parked_copy() -> None:
    job = dispatch_job(NOW, chain=("sim-small",), request_id="r-9")
    assert job_view(job).attributes["switchyard.chain"] == ["sim-small"]
    later = job.model_copy(update={"round": 1, "not_before": NOW + timedelta(seconds=2)})
    parked = finish_view([Output("retry", "r-9", later, retry_tier=1, headers=True)])
    assert parked.attributes["switchyard.outcome"] == "parked"
    assert parked.attributes["switchyard.next_round"] == 1
    assert finish_view([]).attributes == {"switchyard.outcome": "skipped"}
    steps = [PlanStep(kind="budget_alert", detail="acme at 80%"), PlanStep(kind="call")]
    routed = Output("dispatch", "r-9", job.model_copy(update={"steps": steps}))
    budget = dict(route_view([routed]).events)["budget"]
    assert budget["switchyard.steps"] == ["budget_alert: acme at 80%"]
