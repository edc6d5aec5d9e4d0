"""Which model to call next, decided from the attempts made so far.

The provider worker asks, calls, records the outcome and asks again; this
module never calls anything, so the whole retry/fallback policy is testable
with plain lists.
"""

from processors.errors import ContextTooLong
from schemas.decision import RoutingDecision
from schemas.messages import Attempt


def next_model(decision: RoutingDecision, attempts: list[Attempt]) -> str | None:
    """The next model to try, or None when the job is finished (answered or out of options).

    Retryable failures and context overflow move on to the next fallback; any
    other terminal failure (bad request, rejected credentials) ends the job,
    since another model would be sent the same bad request.
    """
    if attempts:
        last = attempts[-1]
        if last.outcome == "ok":
            return None
        if last.error is not None and not last.error.retryable:
            if last.error.code != ContextTooLong.code:
                return None
    tried = {a.model for a in attempts}
    for model in [decision.chosen_model, *decision.fallback_models]:
        if model not in tried:
            return model
    return None
