"""``switchyard demo``: the whole path once, with numbers read back from ClickHouse."""

import asyncio
import itertools
import time
import uuid
from collections.abc import Mapping
from typing import Any

from commands.console import Column, print_table, say
from commands.progress import Progress
from commands.telemetry_reader import run_query, telemetry_table
from processors.authenticate import SigningKey
from schemas.config import SwitchyardConfig
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest, Quality
from streams.client import SwitchyardClient
from streams.local.environment import Environment
from streams.tenant_keys import signing_keys
from streams.topics import TopicCatalogue

PROMPTS: list[tuple[str | None, str]] = [
    (None, "Write a Python function that merges two sorted lists."),
    (None, "Summarize the key points of this memo: revenue is up 4%, costs are flat."),
    (None, "Solve for x: 3x + 7 = 22. How many solutions are there?"),
    (None, "Translate 'the invoice is overdue' into French."),
    (None, "Hi! What's a good name for a pet turtle?"),
    (None, "Explain step by step why the sky is blue."),
    ("extraction", "Pull the sender, date and amount out of: 'Paid 40 EUR to Ana on 3 May'."),
    ("classification", "Is this review positive or negative: 'Arrived broken, no refund.'"),
]
QUALITIES: list[Quality | None] = ["economy", "balanced", "premium", None]
TEAMS = ("search", "support")  # so the shipped questions' team columns have something to show


def demo_requests(config: SwitchyardConfig, n: int, run_id: str) -> list[InferenceRequest]:
    tenants = list(config.tenants)
    combos = itertools.cycle(itertools.product(PROMPTS, QUALITIES))
    out = []
    for i in range(n):
        (task, prompt), quality = next(combos)
        out.append(
            InferenceRequest(
                request_id=f"{run_id}-{i:06d}",
                tenant=tenants[i % len(tenants)],
                team=TEAMS[(i // len(tenants)) % len(TEAMS)],
                app=run_id,
                messages=[ChatMessage(role="user", content=prompt)],
                task=task,
                quality=quality,
                max_tokens=128,
            )
        )
    return out


async def publish_and_collect(
    bootstrap: str,
    catalogue: TopicCatalogue,
    requests: list[InferenceRequest],
    timeout_s: float,
    label: str = "replies",
    keys: Mapping[str, SigningKey] | None = None,
) -> tuple[dict[str, InferenceReply], int]:
    """Submit every request (signed for the tenants in ``keys``), wait for the replies;
    return them and the duplicate count."""
    async with SwitchyardClient(bootstrap, catalogue, keys=keys) as client:
        futures = [await client.submit(r) for r in requests]
        await client.flush()
        progress = Progress(label, len(requests))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = sum(f.done() for f in futures)
            progress.update(done)
            if done == len(futures):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # a short grace period in which duplicates would show
        replies = {f.result().request_id: f.result() for f in futures if f.done()}
        return replies, client.duplicate_replies


def wait_for_telemetry(env: Environment, app: str, expected: int, timeout_s: float) -> int:
    # ``app`` is a run id this module generated (hex), not user input.
    table = telemetry_table(env, "requests")
    sql = f"SELECT count() FROM {table} FINAL WHERE app = '{app}'"  # noqa: S608
    deadline = time.monotonic() + timeout_s
    rows = 0
    progress = Progress("telemetry rows", expected)
    while time.monotonic() < deadline:
        rows = int(run_query(env, sql)[1][0][0])
        progress.update(rows)
        if rows >= expected:
            break
        time.sleep(0.5)
    return rows


def by_model(env: Environment, app: str) -> list[dict[str, Any]]:
    # ``app`` is a run id this module generated (hex), not user input.
    sql = (
        "SELECT model, count() AS requests, round(sum(cost_usd), 6) AS cost_usd, "  # noqa: S608
        "round(quantile(0.5)(total_ms), 1) AS p50_ms, round(quantile(0.95)(total_ms), 1) AS p95_ms "
        f"FROM {telemetry_table(env, 'requests')} FINAL WHERE app = '{app}' "
        "GROUP BY model ORDER BY requests DESC"
    )
    columns, rows = run_query(env, sql)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def run_demo(
    env: Environment, config: SwitchyardConfig, bootstrap: str, n: int, timeout_s: float
) -> dict[str, Any]:
    run_id = f"demo-{uuid.uuid4().hex[:8]}"
    catalogue = TopicCatalogue(env.namespace)
    requests = demo_requests(config, n, run_id)
    keys = signing_keys(config)
    # One job through the whole path first, so start-up time is not counted as latency.
    warm_up = demo_requests(config, 1, f"{run_id}-warmup")
    asyncio.run(publish_and_collect(bootstrap, catalogue, warm_up, timeout_s, "warm-up", keys))
    say(f"publishing {n} requests over {len(config.tenants)} tenants (run {run_id})")
    replies, duplicates = asyncio.run(
        publish_and_collect(bootstrap, catalogue, requests, timeout_s, keys=keys)
    )
    rows = wait_for_telemetry(env, run_id, n, timeout_s=60)
    statuses: dict[str, int] = {}
    for reply in replies.values():
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
    return {
        "run_id": run_id,
        "requests": n,
        "replies": len(replies),
        "lost": n - len(replies),
        "duplicates": duplicates,
        "statuses": statuses,
        "telemetry_rows": rows,
        "by_model": by_model(env, run_id),
    }


MODEL_COLUMNS = (
    Column("model", 14),
    Column("requests", 8, right=True),
    Column("cost USD", 12, right=True),
    Column("p50 ms", 8, right=True),
    Column("p95 ms", 8, right=True),
)


def print_summary(summary: dict[str, Any]) -> None:
    """The counts, the statuses, then one row per model (``run_demo``'s result)."""
    print(
        f"requests {summary['requests']}  replies {summary['replies']}  lost {summary['lost']}  "
        f"duplicates {summary['duplicates']}  telemetry rows {summary['telemetry_rows']}"
    )
    print("statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["statuses"].items())))
    print()
    rows = [
        (row["model"] or "(none)", str(row["requests"]), f"{row['cost_usd']:.6f}",
         f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}")
        for row in summary["by_model"]
    ]  # fmt: skip
    print_table(MODEL_COLUMNS, rows)
