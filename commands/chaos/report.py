"""Accounting for a run: replies, provider calls, circuits, dead letters, telemetry rows,
the scenario's checks, and the summary printed for people."""

import asyncio
import time
from typing import Any

from commands.chaos.run import Run
from commands.console import Column, print_table, say
from commands.telemetry_reader import run_query, telemetry_table
from processors.policy import DEADLINE_REASON
from schemas.dead_letter import DeadLetter
from schemas.errors import TopicMissing
from schemas.health import EndpointHealth
from schemas.messages import InferenceReply, InferenceRequest
from streams.kafka.reading import read_to_end
from streams.topics import TopicCatalogue


async def summarise(
    run: Run,
    catalogue: TopicCatalogue,
    requests: dict[str, InferenceRequest],
    replies: dict[str, InferenceReply],
    duplicates: int,
) -> dict[str, Any]:
    """What the run did, the scenario's checks, and ``ok``: no job lost or answered
    twice and every check held. Waits up to 90 s for the telemetry sink to catch up."""
    stats = await run.provider_stats()
    summary: dict[str, Any] = {
        "scenario": run.scenario.name,
        "run_id": run.run_id,
        **_reply_counts(requests, replies, duplicates),
        "provider_calls": sum(m["requests"] for m in stats.values()),
        **_attempt_counts(requests, replies),
        "provider_stats": stats,
        **await _observed(run, catalogue, len(replies)),
    }
    checks = run.scenario.checks(run, summary)
    summary["checks"] = checks
    summary["ok"] = summary["lost"] == 0 and duplicates == 0 and all(checks.values())
    return summary


def _reply_counts(
    requests: dict[str, InferenceRequest], replies: dict[str, InferenceReply], duplicates: int
) -> dict[str, Any]:
    return {
        "sent": len(requests),
        "answered": len(replies),
        "lost": len(requests) - len(replies),
        "duplicate_replies": duplicates,
        "statuses": _count(reply.status for reply in replies.values()),
    }


def _attempt_counts(
    requests: dict[str, InferenceRequest], replies: dict[str, InferenceReply]
) -> dict[str, Any]:
    ok = [r for r in replies.values() if r.status == "ok"]
    return {
        "calls_in_replies": sum(
            1
            for r in replies.values()
            for a in r.attempts
            if a.outcome not in ("circuit_open", "throttled")
        ),
        "fallbacks": sum(1 for r in ok if r.routing is not None and r.model != r.routing.chosen),
        "retried": sum(1 for r in replies.values() if any(a.round > 0 for a in r.attempts)),
        "expired": sum(1 for r in replies.values() if r.status == "expired"),
        "deadline_refused": sum(1 for r in replies.values() if _refused_for_deadline(r)),
        "late_ok": sum(1 for r in ok if _late(r, requests[r.request_id])),
        "p50_ms": _quantile([r.timings.total_ms for r in ok], 0.5),
        "p99_ms": _quantile([r.timings.total_ms for r in ok], 0.99),
    }


def _late(reply: InferenceReply, request: InferenceRequest) -> bool:
    return request.deadline is not None and reply.finished_at > request.deadline


async def _observed(run: Run, catalogue: TopicCatalogue, answered: int) -> dict[str, Any]:
    """What the run left behind: circuit transitions, dead letters, telemetry rows, workers."""
    bootstrap = run.stack.bootstrap
    health = [
        EndpointHealth.model_validate_json(v)
        for v in await read_topic(bootstrap, catalogue.health.name)
    ]
    letters = [
        DeadLetter.model_validate_json(v)
        for v in await read_topic(bootstrap, catalogue.dead_letter.name)
    ]
    rows = await asyncio.to_thread(_telemetry_rows, run, answered)
    return {
        "circuits": _circuits(health),
        "dead_letters_by_code": _count(letter.error.code for letter in letters),
        "telemetry_rows": rows["final"],
        "telemetry_raw_rows": rows["raw"],
        "workers_alive": _workers_alive(run),
        "restarts": run.restarts,
        "events": run.events,
    }


def _count(codes: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for code in codes:
        out[code] = out.get(code, 0) + 1
    return out


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 1)


def _circuits(health: list[EndpointHealth]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for h in health:
        entry = out.setdefault(
            h.model, {"opened": 0, "closed": 0, "cool_downs": 0, "final": "closed"}
        )
        if h.kind == "rate_limit":
            entry["cool_downs"] += 1
            continue
        entry["opened" if h.state == "open" else "closed"] += 1
        entry["final"] = h.state
    return out


def _workers_alive(run: Run) -> bool:
    return all(p.poll() is None for p in run.stack.processes.values())


def _telemetry_rows(run: Run, expected: int) -> dict[str, int]:
    """Rows for this run's jobs, once the sink has caught up (or after a minute)."""
    table = telemetry_table(run.env, "requests")
    # ``app`` is the run id this module generated, not user input.
    final_sql = f"SELECT count() FROM {table} FINAL WHERE app = '{run.run_id}'"  # noqa: S608
    raw_sql = f"SELECT count() FROM {table} WHERE app = '{run.run_id}'"  # noqa: S608
    deadline = time.monotonic() + 90
    final = 0
    while time.monotonic() < deadline:
        try:
            final = int(run_query(run.env, final_sql)[1][0][0])
        except Exception:  # the sink is restarting; the last query below raises
            # Between a sink's restart and its query service coming up, the database is
            # opened here and chdb may refuse it ("Error initializing EmbeddedServer").
            final = 0
        if final >= expected:
            break
        time.sleep(0.5)
    raw = int(run_query(run.env, raw_sql)[1][0][0])
    return {"final": final, "raw": raw}


async def read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value of ``topic`` from its start to its current end ([] if it is missing)."""
    try:
        return [r.value async for r in read_to_end(bootstrap, topic) if r.value is not None]
    except TopicMissing:
        return []


def print_summary(s: dict[str, Any]) -> None:
    """The run's verdict, then its counts, circuits, events and checks as tables."""
    say(f"scenario {s['scenario']}: {'OK' if s['ok'] else 'FAILED'}")
    counts = [
        *(
            (name, str(s[name]))
            for name in ("sent", "answered", "lost", "duplicate_replies", "provider_calls")
        ),
        *((name, str(s[name])) for name in ("fallbacks", "retried", "expired")),
        ("latency ok p50 ms", str(s["p50_ms"])),
        ("latency ok p99 ms", str(s["p99_ms"])),
        ("telemetry rows (raw)", f"{s['telemetry_rows']} ({s['telemetry_raw_rows']})"),
    ]
    statuses = [(f"status {k}", str(v)) for k, v in sorted(s["statuses"].items())]
    letters = [(f"dead letters {k}", str(v)) for k, v in sorted(s["dead_letters_by_code"].items())]
    print_table(COUNT_COLUMNS, counts, statuses, letters, title="counts")
    circuits = [
        (model, str(c["opened"]), str(c["closed"]), str(c["cool_downs"]), str(c["final"]))
        for model, c in sorted(s["circuits"].items())
    ]
    if circuits:
        print_table(CIRCUIT_COLUMNS, circuits, title="circuits")
    if s["events"]:
        events = [(f"t+{e['at_s']}s", e["event"]) for e in s["events"]]
        print_table(EVENT_COLUMNS, events, title="events")
    checks = [("held" if held else "FAILED", check) for check, held in s["checks"].items()]
    print_table(CHECK_COLUMNS, checks, title="checks")


COUNT_COLUMNS = (Column("count"), Column("value", right=True))
CIRCUIT_COLUMNS = (
    Column("circuit"),
    Column("opened", right=True),
    Column("closed", right=True),
    Column("cool-downs", right=True),
    Column("now"),
)
EVENT_COLUMNS = (Column("at", right=True), Column("event"))
CHECK_COLUMNS = (Column("check"), Column("what"))


def _refused_for_deadline(reply: InferenceReply) -> bool:
    """Refused by the router because its deadline left no model time to answer."""
    return (
        reply.status == "rejected"
        and reply.routing is not None
        and reply.routing.chosen is None
        and any(reason.endswith(DEADLINE_REASON) for reason in reply.routing.rejected.values())
    )
