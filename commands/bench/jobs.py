"""The jobs every side of the comparison runs: the same prompts, groups and output limits.

A ``Job`` is the part of an ``InferenceRequest`` a plain OpenAI client sends, plus
the model group it belongs to, so LiteLLM, the bare client and Switchyard are
handed identical work.
"""

from collections.abc import Callable
from dataclasses import dataclass

from schemas.messages import InferenceRequest

# A request without an output limit gets the demo's, so every side asks for the same length.
DEFAULT_MAX_TOKENS = 128


@dataclass(frozen=True)
class Job:
    """One chat completion to make: OpenAI-shaped messages sent to ``group``."""

    request_id: str
    tenant: str
    group: str
    messages: list[dict[str, str]]
    max_tokens: int


def jobs_from_requests(
    requests: list[InferenceRequest], group_of: Callable[[InferenceRequest], str]
) -> list[Job]:
    """One job per request, in order; ``group_of`` names the model group a request goes to.

    Multi-part contents are sent as their joined text (images dropped), as a
    plain client holding only strings would.
    """
    return [
        Job(
            request_id=r.request_id,
            tenant=r.tenant,
            group=group_of(r),
            messages=[{"role": m.role, "content": m.text()} for m in r.messages],
            max_tokens=r.max_tokens or DEFAULT_MAX_TOKENS,
        )
        for r in requests
    ]
