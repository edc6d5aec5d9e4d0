"""Generated telemetry for the named-query and rollup tests: seeded, several tenants,
teams, apps, models, tasks and days, every status, cache hits, cascades with
escalations, downgrades with their audit rows, and fallbacks."""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from schemas.telemetry import AttemptRow, AuditRow, RequestRow, TelemetryEvent
from tests.helpers import request_row

AS_OF = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
MODELS = {"sim-small": "sim", "sim-medium": "sim", "sim-large": "sim", "sim-local": "onprem"}
PRICES = {  # USD per 1M tokens, in and out: the sample config's
    "sim-small": (0.10, 0.40),
    "sim-medium": (0.60, 2.40),
    "sim-large": (5.00, 15.00),
    "sim-local": (0.05, 0.05),
}
TENANTS = ("acme", "globex", "initech")
TEAMS = ("search", "support", "")
APPS = ("web", "batch")
TASKS = ("chat", "code", "extraction")
QUALITIES = ("economy", "balanced", "premium")


@dataclass
class Generated:
    events: list[TelemetryEvent] = field(default_factory=list)

    @property
    def requests(self) -> list[RequestRow]:
        return [e.request for e in self.events if e.request is not None]

    @property
    def attempts(self) -> list[AttemptRow]:
        return [a for e in self.events for a in e.attempts]

    @property
    def audit(self) -> list[AuditRow]:
        return [a for e in self.events for a in e.audit]


def generate(n: int = 900, seed: int = 7) -> Generated:
    """``n`` requests from 20 days before ``AS_OF`` to a day after it."""
    rng = random.Random(seed)
    out = Generated()
    for i in range(n):
        at = AS_OF - timedelta(seconds=rng.randrange(-86_400, 20 * 86_400))
        out.events.append(_event(rng, f"q{seed}-{i:05d}", at.replace(microsecond=0)))
    return out


def _event(rng: random.Random, request_id: str, at: datetime) -> TelemetryEvent:
    tenant, status = (
        rng.choice(TENANTS),
        rng.choices(["ok", "error", "rejected", "expired"], [80, 8, 9, 3])[0],
    )
    team, app = rng.choice(TEAMS), rng.choice(APPS)
    strategy = rng.choice(["cheapest-capable", "cheapest-capable", "cascade", "rules"])
    model = rng.choice(list(MODELS))
    steps: list[dict[str, str]] = []
    cache = "off"
    audit: list[AuditRow] = []
    calls = 0
    if status == "ok":
        roll = rng.random()
        if roll < 0.1:
            cache = "hit"
            steps.append({"kind": "cache_hit", "model": model})
        else:
            calls = rng.choice([1, 1, 1, 2, 3])
            if strategy == "cascade" and calls > 1 and rng.random() < 0.5:
                steps.append({"kind": "check_failed", "model": "sim-small"})
            if roll > 0.85:
                kind = rng.choice(["rate_downgraded", "budget_downgraded"])
                steps.append({"kind": kind, "model": model, "detail": "over a limit"})
                audit.append(_audit(request_id, tenant, team, app, "downgraded", kind, at))
            steps.append({"kind": "call", "model": model})
    elif status == "error":
        calls = rng.choice([1, 2, 3])
    else:
        rule = rng.choice(["budget_exhausted", "policy_denied"])
        audit.append(_audit(request_id, tenant, team, app, "denied", rule, at))
    answered = status == "ok"
    tokens_in = rng.randrange(20, 4000) if answered else 0
    tokens_out = rng.randrange(5, 800) if answered else 0
    price_in, price_out = PRICES[model]
    cost = 0.0 if cache == "hit" else (tokens_in * price_in + tokens_out * price_out) / 1e6
    row = request_row(
        request_id,
        at,
        tenant=tenant,
        team=team,
        app=app,
        task=rng.choice(TASKS),
        quality=rng.choice(QUALITIES),
        status=status,
        strategy=strategy,
        model=model if answered else "",
        provider=MODELS[model] if answered else "",
        attempts=calls,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_usd=cost,
        total_ms=round(rng.lognormvariate(5, 0.8), 3) if answered else rng.uniform(0, 5),
        cache=cache,
        steps=orjson.dumps(steps).decode(),
        error_code="" if answered else "unavailable",
        config_version="cfg-1" if at < AS_OF - timedelta(days=10) else "cfg-2",
    )
    attempts = [
        AttemptRow(
            request_id=request_id,
            attempt=k,
            tenant=tenant,
            model=(m := model if k == calls - 1 else rng.choice(list(MODELS))),
            provider=MODELS[m],
            outcome="ok" if answered and k == calls - 1 else rng.choice(["error", "timeout"]),
            error_code="",
            latency_ms=round(rng.uniform(5, 900), 3),
            finished_at=at,
        )
        for k in range(calls)
    ]
    return TelemetryEvent(request=row, attempts=attempts, audit=audit)


def _audit(
    request_id: str, tenant: str, team: str, app: str, action: str, rule: str, at: datetime
) -> AuditRow:
    return AuditRow.model_validate(
        {
            "request_id": request_id,
            "tenant": tenant,
            "team": team,
            "app": app,
            "action": action,
            "rule": rule,
            "detail": f"{rule} for {tenant}",
            "config_version": "cfg-2",
            "at": at,
        }
    )
