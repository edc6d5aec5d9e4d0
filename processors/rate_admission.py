"""A routed job against its tenant's rate limits: admitted, queued, downgraded or refused.

The cells are ``processors.rate_limit``'s; this module applies the tenant's ``on_limit``
behaviour (``schemas.rate_limits``) to a job the strategy has already placed:

- within every limit: admitted, the cells charged;
- ``queue``: charged now and dispatched once the limit admits it, if that is within
  ``max_queue_s`` and before the job's deadline (the reply's steps say how long it waited);
- ``downgrade``: served by the cheapest model the job's constraints allow, if that is
  cheaper than the routed choice, without counting against the limit;
- otherwise refused with ``rate_limited``, naming the limit and when to retry.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from processors import rate_limit
from processors.estimate import estimate_input_tokens
from processors.strategies import Choice
from schemas.config import SwitchyardConfig
from schemas.decision import CandidateVerdict
from schemas.errors import OverRateLimit
from schemas.messages import InferenceRequest
from schemas.plan import PlanStep


@dataclass(frozen=True)
class RateOutcome:
    """The job may go: with ``choice`` (downgraded or not), after ``wait_s``."""

    choice: Choice
    tat: dict[str, float] | None = None  # the cells to store; None leaves them as they were
    wait_s: float = 0.0
    step: PlanStep | None = None  # what a limit did to the job, for its reply
    tokens: int = 0  # charged to token limits (the settlement gives back what is unused)


def apply_rate_limits(
    request: InferenceRequest,
    config: SwitchyardConfig,
    cells: Mapping[str, float],
    choice: Choice,
    verdicts: list[CandidateVerdict],
    now: float,
) -> RateOutcome | OverRateLimit:
    """Judge ``request``, routed to ``choice``, against its limits at ``now`` (seconds)."""
    spec = config.tenants[request.tenant].rate_limits
    limits = rate_limit.limits_for(spec, request.team, request.app)
    if not limits:
        return RateOutcome(choice)
    tokens = charged_tokens(request, config)
    charged = tokens if any(limit.unit == "tokens" for limit in limits) else 0
    queue_s = spec.max_queue_s if spec.on_limit == "queue" else 0.0
    if request.deadline is not None:
        queue_s = min(queue_s, request.deadline.timestamp() - now)
    cost = {"requests": 1, "tokens": tokens}
    admission = rate_limit.admit(cells, limits, cost, now, queue_up_to_s=queue_s)
    refused = admission.refused
    if refused is None:
        tat = rate_limit.forget_idle(admission.tat, now)
        if admission.waited_for is None:
            return RateOutcome(choice, tat, tokens=charged)
        detail = f"{rate_limit.named(admission.waited_for)}: waited {admission.wait_s:.1f} s"
        step = PlanStep(kind="rate_queued", detail=detail)
        return RateOutcome(choice, tat, admission.wait_s, step, charged)
    if spec.on_limit == "downgrade":
        cheaper = downgraded(choice, verdicts, config.routing.max_fallbacks)
        if cheaper is not None:
            detail = f"{rate_limit.named(refused.limit)}: {choice.chosen.model} was routed"
            step = PlanStep(kind="rate_downgraded", model=cheaper.chosen.model, detail=detail)
            return RateOutcome(cheaper, step=step)
    return OverRateLimit(rate_limit.describe(refused), refused.retry_after_s)


def charged_tokens(request: InferenceRequest, config: SwitchyardConfig) -> int:
    """What a job counts against token limits: its estimated input plus the most it may
    write (given back, less what its calls used, when it is settled)."""
    return estimate_input_tokens(request) + (
        request.max_tokens or config.routing.default_max_tokens
    )


def downgraded(
    choice: Choice, verdicts: list[CandidateVerdict], max_fallbacks: int
) -> Choice | None:
    """The cheapest model the job's constraints allow, with the next cheapest as fallbacks,
    if it costs less than ``choice`` would (all of a cascade's rungs counted); else None."""
    allowed = sorted((v for v in verdicts if v.eligible), key=lambda v: v.estimated_cost_usd)
    routed_cost = choice.cost_usd(verdicts)
    cheaper = [v for v in allowed if v.estimated_cost_usd < routed_cost]
    if not cheaper:
        return None
    return Choice(
        chosen=cheaper[0],
        fallbacks=cheaper[1 : 1 + max_fallbacks],
        reason="over a rate limit: the cheapest model allowed",
    )
