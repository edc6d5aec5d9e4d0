"""Synthetic traffic for drift tests: two windows drawn from stated distributions.

``sample`` draws one window's requests as columns (numpy arrays per task); the pure
tests sum them into ``WindowStats`` (``window_stats``), the ClickHouse tests write
them as telemetry rows (``telemetry``). Both see the same draw.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import orjson

from schemas.drift import Moments, ProviderWindow, TaskWindow, WindowStats
from schemas.feedback import Feedback
from schemas.telemetry import AttemptRow, RequestRow, TelemetryEvent

# model -> (provider, price per request, mean predicted quality, chance of a thumbs up)
MODELS: dict[str, tuple[str, float, float, float]] = {
    "sim-local": ("onprem", 0.00005, 0.55, 0.70),
    "sim-small": ("sim", 0.0002, 0.62, 0.75),
    "sim-medium": ("sim", 0.0012, 0.74, 0.82),
    "sim-large": ("sim", 0.0080, 0.86, 0.90),
}
NAMES = list(MODELS)
# The stand-in for a request's chosen model when a fallback answered it.
CHOSEN_BEFORE_FALLBACK = {"sim-local": "sim-small", "sim-small": "sim-medium"}
BASE_MIX: dict[str, dict[str, float]] = {
    "chat": {"sim-small": 0.6, "sim-medium": 0.3, "sim-large": 0.1},
    "code": {"sim-small": 0.2, "sim-medium": 0.5, "sim-large": 0.3},
    "extraction": {"sim-local": 0.5, "sim-small": 0.5},
}
FAILURE_RATE = 0.03
FALLBACK_RATE = 0.05
FEEDBACK_RATE = 0.3
COST_SPREAD = 0.5  # sigma of the lognormal token-count factor


def shifted_mix(task: str, share: float) -> dict[str, dict[str, float]]:
    """``BASE_MIX`` with ``share`` of ``task``'s traffic moved from its cheapest model to
    sim-large (the planted shift: a costlier model takes part of one task)."""
    mix = {t: dict(m) for t, m in BASE_MIX.items()}
    cheapest = min(mix[task], key=lambda m: MODELS[m][1])
    mix[task][cheapest] -= share
    mix[task]["sim-large"] = mix[task].get("sim-large", 0.0) + share
    return mix


@dataclass(frozen=True)
class TaskDraw:
    """One task's requests in one window, as columns."""

    model: np.ndarray  # index into NAMES of the answering model (or the chosen one, if failed)
    failed: np.ndarray  # bool
    fell_back: np.ndarray  # bool, False where failed
    cost: np.ndarray
    predicted: np.ndarray
    thumbs: np.ndarray  # 1.0 / 0.0, nan where no feedback


def sample(
    rng: np.random.Generator, mix: dict[str, dict[str, float]], per_task: int
) -> dict[str, TaskDraw]:
    draws = {}
    for task, shares in mix.items():
        p = np.array([shares.get(name, 0.0) for name in NAMES])
        model = rng.choice(len(NAMES), size=per_task, p=p / p.sum())
        failed = rng.random(per_task) < FAILURE_RATE
        price = np.array([MODELS[n][1] for n in NAMES])[model]
        quality = np.array([MODELS[n][2] for n in NAMES])[model]
        up = np.array([MODELS[n][3] for n in NAMES])[model]
        judged = rng.random(per_task) < FEEDBACK_RATE
        draws[task] = TaskDraw(
            model=model,
            failed=failed,
            fell_back=(rng.random(per_task) < FALLBACK_RATE) & ~failed,
            cost=price * rng.lognormal(0.0, COST_SPREAD, per_task),
            predicted=np.clip(rng.normal(quality, 0.1), 0.0, 1.0),
            thumbs=np.where(judged, (rng.random(per_task) < up).astype(float), np.nan),
        )
    return draws


def window_stats(draws: dict[str, TaskDraw], start: datetime, end: datetime) -> WindowStats:
    """What ``sinks.drift_queries`` would read back for these requests."""
    tasks = {}
    providers: dict[str, ProviderWindow] = {}
    for task, d in draws.items():
        ok = ~d.failed
        counts = np.bincount(d.model[ok], minlength=len(NAMES))
        judged = ok & ~np.isnan(d.thumbs)
        tasks[task] = TaskWindow(
            requests=len(d.model),
            failed=int(d.failed.sum()),
            answered_by={NAMES[i]: int(c) for i, c in enumerate(counts) if c},
            fell_back=int(d.fell_back.sum()),
            cost=_moments(d.cost[ok]),
            log_cost=_moments(np.log1p(d.cost[ok] * 1e6)),
            predicted_quality=_moments(d.predicted[ok]),
            feedback={"thumbs": _moments(d.thumbs[judged])},
        )
        for provider, (calls, errors) in _calls(d).items():
            seen = providers.get(provider, ProviderWindow())
            providers[provider] = ProviderWindow(
                attempts=seen.attempts + calls, errors=seen.errors + errors
            )
    return WindowStats(start=start, end=end, tasks=tasks, providers=providers)


def _moments(values: np.ndarray) -> Moments:
    return Moments(
        n=len(values), total=float(values.sum()), total_sq=float((values * values).sum())
    )


def _calls(d: TaskDraw) -> dict[str, tuple[int, int]]:
    """Provider -> (calls, failed calls): a failed request made one failed call; a fallback
    made a failed call on its chosen model, then the answering one; the rest one call."""
    out: dict[str, tuple[int, int]] = {}
    for index, name in enumerate(NAMES):
        mine = d.model == index
        chosen = MODELS[CHOSEN_BEFORE_FALLBACK.get(name, "sim-small")][0]
        for provider, calls, errors in (
            (MODELS[name][0], int(mine.sum()), int((mine & d.failed).sum())),
            (chosen, int((mine & d.fell_back).sum()), int((mine & d.fell_back).sum())),
        ):
            calls_before, errors_before = out.get(provider, (0, 0))
            out[provider] = (calls_before + calls, errors_before + errors)
    return {p: c for p, c in out.items() if c[0]}


def telemetry(
    draws: dict[str, TaskDraw], tenant: str, start: datetime, end: datetime, prefix: str
) -> Iterator[TelemetryEvent | Feedback]:
    """The draws as the telemetry worker writes them, spread evenly over [start, end)."""
    total = sum(len(d.model) for d in draws.values())
    step = (end - start) / total
    number = 0
    for task, d in draws.items():
        for i in range(len(d.model)):
            at = start + step * number
            request_id = f"{prefix}-{number:06d}"
            number += 1
            yield _event(task, d, i, tenant, request_id, at)
            if not d.failed[i] and not np.isnan(d.thumbs[i]):
                yield Feedback(
                    request_id=request_id,
                    tenant=tenant,
                    kind="thumbs",
                    value=float(d.thumbs[i]),
                    at=at + timedelta(seconds=1),
                )


def _event(
    task: str, d: TaskDraw, i: int, tenant: str, request_id: str, at: datetime
) -> TelemetryEvent:
    name = NAMES[d.model[i]]
    failed, fell_back = bool(d.failed[i]), bool(d.fell_back[i])
    chosen = CHOSEN_BEFORE_FALLBACK.get(name, "sim-small") if fell_back else name
    explanation = {"task": task, "chosen": chosen, "fallbacks": [name] if fell_back else []}
    attempts = [
        AttemptRow(
            request_id=request_id,
            attempt=k,
            tenant=tenant,
            model=model,
            provider=MODELS[model][0],
            outcome="ok" if succeeded else "error",
            error_code="" if succeeded else "provider_unavailable",
            latency_ms=100.0,
            finished_at=at,
        )
        for k, (model, succeeded) in enumerate(
            [(chosen, False), (name, True)] if fell_back else [(name, not failed)]
        )
    ]
    return TelemetryEvent(
        request=_request(task, d, i, tenant, request_id, at, explanation), attempts=attempts
    )


def _request(
    task: str,
    d: TaskDraw,
    i: int,
    tenant: str,
    request_id: str,
    at: datetime,
    explanation: dict[str, object],
) -> RequestRow:
    failed = bool(d.failed[i])
    name = "" if failed else NAMES[d.model[i]]
    return RequestRow(
        request_id=request_id,
        tenant=tenant,
        team="",
        app="drift-test",
        task=task,
        task_source="default",
        quality="balanced",
        data_classification="internal",
        status="error" if failed else "ok",
        strategy="learned",
        model=name,
        provider=MODELS[name][0] if name else "",
        region="",
        attempts=1 + bool(d.fell_back[i]),
        input_tokens=100,
        output_tokens=50,
        cost_usd=0.0 if failed else float(d.cost[i]),
        estimated_cost_usd=0.0,
        queued_ms=1.0,
        routing_ms=1.0,
        provider_ms=100.0,
        total_ms=102.0,
        error_code="provider_unavailable" if failed else "",
        prompt_chars=40,
        explanation=orjson.dumps(explanation).decode(),
        finished_at=at,
        predicted_quality=-1.0 if failed else float(d.predicted[i]),
    )
