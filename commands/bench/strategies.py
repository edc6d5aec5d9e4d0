"""``switchyard bench --router DIR``: the routing stage's rate per strategy.

The router stage alone, once per strategy and twice in alternation (rules,
learned, rules, learned, ...) on one broker, each on its own topics, reporting
each strategy's best rate and learned/rules.
"""

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from commands.bench.pipeline import router_rate
from commands.progress import say
from schemas.config import REVEAL_SECRETS, SwitchyardConfig
from streams.local.environment import Environment
from streams.local.stack import Stack

# Bench-only routing for the strategy comparison: a rules table over the sample
# models, and the learned artifact's two models standing for the sample's
# cheapest and strongest.
_BENCH_RULES = {
    "*": {
        "economy": ["sim-small", "sim-local"],
        "balanced": ["sim-medium", "sim-small"],
        "premium": ["sim-large", "sim-medium"],
    }
}
STRATEGIES = ("rules", "learned", "cheapest-capable")


def run_strategy_bench(
    env: Environment, config: SwitchyardConfig, n: int, router_dir: Path, rounds: int = 2
) -> dict[str, Any]:
    from sinks.router_artifact import load_router

    artifact = load_router(router_dir)
    known = artifact.models
    names = [m.name for m in sorted(config.models, key=lambda m: m.price_out_per_mtok)]
    # Cheapest catalogue model -> the artifact's first model, and so on (any mapping
    # exercises the same code path: featurise, predict, choose).
    aliases = dict(zip(names, known, strict=False))
    home = Stack.connect(env, start_broker=True, notify=say)
    rates: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    try:
        for round_ in range(rounds):
            for strategy in STRATEGIES:
                raw = config.model_dump(
                    mode="json", exclude_none=True, context={REVEAL_SECRETS: True}
                )
                raw["routing"]["strategy"] = strategy
                raw["routing"]["rules"] = _BENCH_RULES
                raw["routing"]["learned"] = {"artifact": str(router_dir), "aliases": aliases}
                path = env.state_dir / f"bench-{strategy}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(yaml.safe_dump(raw))
                run_env = replace(env, namespace=f"bench-{uuid.uuid4().hex[:8]}", config_path=path)
                say(f"routing with {strategy} #{round_ + 1}")
                rate = router_rate(run_env, home.bootstrap, config, n)["jobs_per_s"]
                rates[strategy].append(rate)
    finally:
        home.stop()
    best = {s: max(r) for s, r in rates.items()}
    return {
        "jobs": n,
        "router_jobs_per_s": {s: [round(x, 1) for x in r] for s, r in rates.items()},
        "best_jobs_per_s": {s: round(x, 1) for s, x in best.items()},
        "learned_vs_rules": round(best["learned"] / best["rules"], 3),
        "router_version": artifact.version,
    }
