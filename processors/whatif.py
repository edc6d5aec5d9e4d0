"""What-if replay: the decisions logged requests would get under another config.

Telemetry keeps no prompt text, so each logged request is rebuilt as a stand-in
of the same shape: its tenant, its task (as a hint), tier, quality target, data
class, prompt size (a placeholder text of that many characters) and the output
tokens it used. The router's own ``route_request`` decides the stand-in under
the current config and under the new one; each decision is priced with the
tokens the request really used, scored with the chosen model's predicted
quality and timed with the model's observed latency (its configured typical
latency until enough calls were seen).

Left out on purpose: budgets (each request is decided against an empty
budget), the prompt's words (classifier and learned predictions see only the
placeholder) and cascades' extra rungs (the first model is priced).
"""

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import get_args

from pydantic import BaseModel

from processors.budget import Position
from processors.router import Routed, RoutingContext, route_request
from schemas.config import SwitchyardConfig
from schemas.errors import UsageError
from schemas.messages import ChatMessage, DataClass, InferenceRequest, Quality

_SINCE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_TASK = re.compile(r"^[a-z_]{1,32}$")
ALL = "*"
WHATIF = Position("whatif", 0, 0)  # replayed jobs read no topic and reserve no real budget


def parse_since(text: str) -> timedelta:
    """``7d``, ``12h`` or ``30m`` as a duration; ValueError for anything else."""
    match = _SINCE.match(text)
    if match is None or int(match.group(1)) == 0:
        raise UsageError(f"--since {text!r}: give a positive count of d, h or m, e.g. 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class LoggedRequest(BaseModel):
    """The columns of one ``requests`` row that a stand-in is built from."""

    request_id: str
    tenant: str
    task: str = ""
    quality: str = ""
    quality_target: float = 0.0
    data_classification: str = ""
    prompt_chars: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ObservedLatency:
    """A model's successful calls in the window: how many, and their mean latency."""

    samples: int
    mean_ms: float


@dataclass(frozen=True)
class Outcome:
    """One config's decision for one request, priced, scored and timed."""

    model: str
    cost_usd: float
    quality: float
    latency_ms: float


def stand_in(row: LoggedRequest) -> InferenceRequest:
    """An InferenceRequest of the logged request's shape; values the row lacks are left open."""
    return InferenceRequest(
        request_id=row.request_id,
        tenant=row.tenant,
        messages=[ChatMessage(role="user", content="x" * row.prompt_chars)],
        task=row.task if _TASK.match(row.task) else None,
        quality=_member(row.quality, Quality),
        quality_target=row.quality_target if 0 < row.quality_target <= 1 else None,
        data_classification=_member(row.data_classification, DataClass),
        max_tokens=row.output_tokens or None,
    )


def _member(value: str, literal: object) -> str | None:
    return value if value in get_args(literal) else None


def decide(
    row: LoggedRequest,
    config: SwitchyardConfig,
    latency: Mapping[str, ObservedLatency],
    now: datetime,
    context: RoutingContext | None = None,
) -> Outcome | None:
    """The outcome ``config`` gives ``row``; None when it rejects the request."""
    if row.tenant not in config.tenants:
        return None
    request = stand_in(row)
    if context is None:
        result = route_request(request, config, None, WHATIF, now)
    else:
        result = route_request(request, config, None, WHATIF, now, context=context)
    if not isinstance(result, Routed):
        return None
    decision = result.decision
    name = decision.chosen_model
    spec = config.model(name)
    if spec is None:  # pragma: no cover - the router only chooses catalogue models
        return None
    verdict = next(v for v in decision.candidates if v.model == name)
    quality = decision.plan.predicted_quality.get(name, verdict.quality_score)
    observed = latency.get(name)
    if observed is not None and observed.samples >= config.routing.latency.min_samples:
        latency_ms = observed.mean_ms
    else:
        latency_ms = spec.typical_latency_ms
    return Outcome(
        model=name,
        cost_usd=spec.cost_usd(row.input_tokens, row.output_tokens),
        quality=quality,
        latency_ms=latency_ms,
    )


class GroupReport(BaseModel):
    """One tenant and task (``*`` = all): costs and means over requests both configs route."""

    tenant: str
    task: str
    n: int
    compared: int
    changed: int
    changed_share: float
    rejected_before: int
    rejected_after: int
    cost_before_usd: float
    cost_after_usd: float
    cost_change_pct: float | None
    quality_before: float | None
    quality_after: float | None
    latency_before_ms: float | None
    latency_after_ms: float | None
    moves: dict[str, int]


class WhatIfReport(BaseModel):
    requests: int
    groups: list[GroupReport]
    total: GroupReport
    router_before: str | None = None  # the learned model's version, when one was loaded
    router_after: str | None = None


@dataclass
class _Tally:
    n: int = 0
    rejected_before: int = 0
    rejected_after: int = 0
    pairs: list[tuple[Outcome, Outcome]] = field(default_factory=list)

    def add(self, before: Outcome | None, after: Outcome | None) -> None:
        self.n += 1
        self.rejected_before += before is None
        self.rejected_after += after is None
        if before is not None and after is not None:
            self.pairs.append((before, after))

    def report(self, tenant: str, task: str) -> GroupReport:
        moves = Counter(f"{b.model} -> {a.model}" for b, a in self.pairs if b.model != a.model)
        cost_before = sum(b.cost_usd for b, _ in self.pairs)
        cost_after = sum(a.cost_usd for _, a in self.pairs)
        changed = sum(moves.values())
        return GroupReport(
            tenant=tenant,
            task=task,
            n=self.n,
            compared=len(self.pairs),
            changed=changed,
            changed_share=changed / self.n if self.n else 0.0,
            rejected_before=self.rejected_before,
            rejected_after=self.rejected_after,
            cost_before_usd=cost_before,
            cost_after_usd=cost_after,
            cost_change_pct=_change_pct(cost_before, cost_after),
            quality_before=_mean(b.quality for b, _ in self.pairs),
            quality_after=_mean(a.quality for _, a in self.pairs),
            latency_before_ms=_mean(b.latency_ms for b, _ in self.pairs),
            latency_after_ms=_mean(a.latency_ms for _, a in self.pairs),
            moves=dict(sorted(moves.items())),
        )


def _change_pct(before: float, after: float) -> float | None:
    if before == 0:
        return 0.0 if after == 0 else None
    return (after - before) / before * 100


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def compare(
    rows: Iterable[LoggedRequest],
    current: SwitchyardConfig,
    new: SwitchyardConfig,
    latency: Mapping[str, ObservedLatency],
    now: datetime,
    context_before: RoutingContext | None = None,
    context_after: RoutingContext | None = None,
) -> WhatIfReport:
    """Decide every row under both configs and sum up per tenant and task.

    Costs, qualities and latencies are over the rows both configs route
    (``compared``); a row either config rejects counts in ``rejected_*`` only.
    ``changed_share`` is of all ``n`` rows. A context (a loaded learned model)
    is passed to the router only when given.
    """
    groups: dict[tuple[str, str], _Tally] = {}
    total = _Tally()
    for row in rows:
        before = decide(row, current, latency, now, context_before)
        after = decide(row, new, latency, now, context_after)
        groups.setdefault((row.tenant, row.task), _Tally()).add(before, after)
        total.add(before, after)
    return WhatIfReport(
        requests=total.n,
        groups=[tally.report(*key) for key, tally in sorted(groups.items())],
        total=total.report(ALL, ALL),
        router_before=context_before.learned.version if context_before else None,
        router_after=context_after.learned.version if context_after else None,
    )
