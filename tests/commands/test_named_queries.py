"""Every shipped query on generated telemetry, through the command's own path
(``commands.query.run_named``), against numbers computed here in plain Python.

The rows go through the real sink into the real embedded engine, with replays: a batch
sent again as it was, one in another order, and one with a message in it twice.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from commands.cli import main
from commands.query import run_named
from schemas.telemetry import RequestRow
from sinks.clickhouse import TelemetrySink
from sinks.queries import load_query, query_names
from streams.local.environment import Environment
from tests.telemetry_data import AS_OF, PRICES, Generated, generate

GIVEN_AS_OF = {"as_of": "2026-11-20T00:00:00Z"}
Record = dict[str, Any]


@pytest.fixture
def data(cli_telemetry: TelemetrySink) -> Generated:
    generated = generate()
    events = generated.events
    batches = [events[i : i + 100] for i in range(0, len(events), 100)]
    for batch in batches:
        for event in batch:
            cli_telemetry.add(event)
        cli_telemetry.flush()
    # Batch 8 again with one message in it twice: still the records of batch 8.
    replays = [batches[2], list(reversed(batches[5])), [*batches[8], batches[8][3]]]
    for replay in replays:  # crash replays: the same records again
        for event in replay:
            cli_telemetry.add(event)
        cli_telemetry.flush()
    return generated


def ask(name: str, **given: str) -> list[Record]:
    columns, rows = run_named(Environment.from_env(), load_query(name), {**GIVEN_AS_OF, **given})
    return [dict(zip(columns, row, strict=True)) for row in rows]


def hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def within(rows: Iterable[RequestRow], days: int) -> list[RequestRow]:
    start = AS_OF - timedelta(days=days)
    return [r for r in rows if start <= hour(r.finished_at) < AS_OF]


def tally(
    rows: Iterable[Any], key: Callable[[Any], Any], **measures: Callable[[Any], float]
) -> dict[Any, Record]:
    out: dict[Any, Record] = defaultdict(lambda: dict.fromkeys(measures, 0))
    for row in rows:
        for name, measure in measures.items():
            out[key(row)][name] += measure(row)
    return dict(out)


def same(actual: Record, expected: Record) -> None:
    for name, value in expected.items():
        if isinstance(value, float):
            assert actual[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
        else:
            assert actual[name] == value, name


def test_every_query_has_a_test_here() -> None:
    tested = {name.removeprefix("test_").split("__")[0] for name in globals()}
    assert set(query_names()) <= tested


def test_cost_by_day(data: Generated) -> None:
    expected = tally(
        within(data.requests, 30),
        lambda r: (r.finished_at.date(), r.tenant, r.team, r.app, r.model),
        requests=lambda r: 1,
        input_tokens=lambda r: r.input_tokens,
        output_tokens=lambda r: r.output_tokens,
        cost_usd=lambda r: r.cost_usd,
    )
    rows = ask("cost_by_day")
    assert len(rows) == len(expected)
    for row in rows:
        same(row, expected[(row["day"], row["tenant"], row["team"], row["app"], row["model"])])
    one = ask("cost_by_day", tenant="globex", days="3")
    assert {r["tenant"] for r in one} == {"globex"}
    assert sum(r["requests"] for r in one) == sum(
        1 for r in within(data.requests, 3) if r.tenant == "globex"
    )


def test_cost_per_success(data: Generated) -> None:
    expected = tally(
        within(data.requests, 30),
        lambda r: (r.tenant, r.task),
        requests=lambda r: 1,
        answered=lambda r: r.status == "ok",
        cost_usd=lambda r: r.cost_usd,
    )
    rows = ask("cost_per_success")
    assert len(rows) == len(expected) == 9
    for row in rows:
        want = expected[(row["tenant"], row["task"])]
        same(row, {**want, "cost_per_answer_usd": want["cost_usd"] / want["answered"]})


def test_latency_by_model(data: Generated) -> None:
    latencies: dict[str, list[float]] = defaultdict(list)
    for r in within(data.requests, 7):
        if r.status == "ok":
            latencies[r.model].append(r.total_ms)
    rows = ask("latency_by_model")
    assert [r["model"] for r in rows] == sorted(latencies)
    for row in rows:
        values = sorted(latencies[row["model"]])
        assert row["answered"] == len(values)
        for q, column in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            # A t-digest estimate: the share of values at or under it must be close to q.
            below = sum(v <= row[column] for v in values) / len(values)
            assert abs(below - q) <= 0.06, (row["model"], column, below)


def test_provider_reliability(data: Generated) -> None:
    start = AS_OF - timedelta(days=7)
    attempts = [a for a in data.attempts if start <= hour(a.finished_at) < AS_OF]
    calls = tally(
        attempts, lambda a: a.provider, calls=lambda a: 1, failed_calls=lambda a: a.outcome != "ok"
    )
    served = tally(
        [r for r in within(data.requests, 7) if r.provider],
        lambda r: r.provider,
        answered=lambda r: r.status == "ok",
        fallbacks=lambda r: r.attempts > 1 and "check_failed" not in r.steps,
    )
    rows = ask("provider_reliability")
    assert [r["provider"] for r in rows] == sorted(calls) == ["onprem", "sim"]
    for row in rows:
        c, s = calls[row["provider"]], served[row["provider"]]
        same(row, {**c, **s})
        assert row["error_rate"] == pytest.approx(c["failed_calls"] / c["calls"])
        assert row["fallback_rate"] == pytest.approx(s["fallbacks"] / s["answered"])
    assert any(r["fallbacks"] for r in rows) and any(r["failed_calls"] for r in rows)


def test_budget_burn(data: Generated) -> None:
    budgets = {"acme": (50.0, "month"), "globex": (20.0, "month"), "initech": (5.0, "day")}
    at = datetime(2026, 11, 19, 18, 30, tzinfo=UTC)  # mid-day: a day budget has spent some
    past = [r for r in data.requests if hour(r.finished_at) < at]
    rows = ask("budget_burn", burn_days="3", as_of="2026-11-19 18:30:00")
    assert [r["tenant"] for r in rows] == sorted(budgets)
    for row in rows:
        budget, period = budgets[row["tenant"]]
        mine = [r for r in past if r.tenant == row["tenant"]]
        start_of_day, start_of_month = (
            at.replace(hour=0, minute=0),
            at.replace(day=1, hour=0, minute=0),
        )
        since = start_of_day if period == "day" else start_of_month
        spent = sum(r.cost_usd for r in mine if r.finished_at >= since)
        window = at - timedelta(days=3)
        recent = [r for r in mine if hour(r.finished_at) >= window]
        first = max(min(hour(r.finished_at) for r in recent), window)
        burn = sum(r.cost_usd for r in recent) * 86400 / max((at - first).total_seconds(), 3600)
        resets = "2026-11-20" if period == "day" else "2026-12-01"
        assert spent > 0
        same(row, {
            "period": period, "budget_usd": budget, "spent_usd": spent,
            "remaining_usd": budget - spent, "burn_usd_per_day": burn,
            "days_to_exhaustion": (budget - spent) / burn, "period_ends": resets,
        })  # fmt: skip


def route_of(r: RequestRow) -> str:
    if r.cache == "hit":
        return "cache"
    if "_downgraded" in r.steps:
        return "downgraded"
    return "cascade" if r.strategy == "cascade" else "routed"


def test_savings(data: Generated) -> None:
    price_in, price_out = PRICES["sim-large"]  # the sample config's most expensive model
    rows_in = within(data.requests, 30)
    by_route = tally(
        rows_in,
        route_of,
        requests=lambda r: 1,
        answered=lambda r: r.status == "ok",
        cost_usd=lambda r: r.cost_usd,
        premium_cost_usd=lambda r: (r.input_tokens * price_in + r.output_tokens * price_out) / 1e6,
    )
    by_route["total"] = tally(rows_in, lambda r: "total", **{  # type: ignore[arg-type]
        k: (lambda name: lambda r: by_route_measure(r, name, price_in, price_out))(k)
        for k in ("requests", "answered", "cost_usd", "premium_cost_usd")
    })["total"]  # fmt: skip
    rows = ask("savings")
    assert [r["route"] for r in rows] == ["cache", "cascade", "downgraded", "routed", "total"]
    for row in rows:
        want = by_route[row["route"]]
        saved = want["premium_cost_usd"] - want["cost_usd"]
        same(row, {**want, "saved_usd": saved, "saved_share": saved / want["premium_cost_usd"]})
        assert row["premium_model"] == "sim-large"
    cheaper = ask("savings", premium_model="sim-medium")
    assert cheaper[-1]["premium_cost_usd"] == pytest.approx(
        sum((r.input_tokens * 0.6 + r.output_tokens * 2.4) / 1e6 for r in rows_in)
    )


def by_route_measure(r: RequestRow, name: str, price_in: float, price_out: float) -> float:
    return {
        "requests": 1,
        "answered": r.status == "ok",
        "cost_usd": r.cost_usd,
        "premium_cost_usd": (r.input_tokens * price_in + r.output_tokens * price_out) / 1e6,
    }[name]


def test_routing_mix(data: Generated) -> None:
    week = AS_OF - timedelta(days=7)
    answered = [r for r in within(data.requests, 14) if r.status == "ok"]
    counts = tally(
        answered,
        lambda r: (r.task, r.model),
        this_week=lambda r: hour(r.finished_at) >= week,
        last_week=lambda r: hour(r.finished_at) < week,
    )
    totals = tally(answered, lambda r: r.task, this=lambda r: hour(r.finished_at) >= week,
                   last=lambda r: hour(r.finished_at) < week)  # fmt: skip
    rows = ask("routing_mix")
    assert len(rows) == len(counts)
    for row in rows:
        want = counts[(row["task"], row["model"])]
        total = totals[row["task"]]
        share_this = want["this_week"] / total["this"]
        share_last = want["last_week"] / total["last"]
        same(row, {**want, "share_this_week": share_this, "share_last_week": share_last,
                   "share_change": share_this - share_last})  # fmt: skip


def test_rule_actions(data: Generated) -> None:
    start = AS_OF - timedelta(days=7)
    served = {r.request_id: r.model for r in data.requests}
    audit = [a for a in data.audit if start <= a.at < AS_OF]
    rows = ask("rule_actions", rule="budget_exhausted")
    expected = sorted(
        (a for a in audit if a.rule == "budget_exhausted"),
        key=lambda a: (-a.at.timestamp(), a.request_id),
    )
    assert [r["request_id"] for r in rows] == [a.request_id for a in expected]
    assert {r["action"] for r in rows} == {"denied"} and {r["served_by"] for r in rows} == {""}
    downgraded = ask("rule_actions", tenant="acme")
    expected = [
        a for a in audit if a.tenant == "acme"
    ]  # every generated action: denied or downgraded
    assert sorted(r["request_id"] for r in downgraded) == sorted(a.request_id for a in expected)
    for row in downgraded:
        assert row["served_by"] == (
            served[row["request_id"]] if row["action"] == "downgraded" else ""
        )
    assert any(r["action"] == "downgraded" for r in downgraded)
    assert len(ask("rule_actions", tenant="acme", limit="3")) == 3


def test_the_command_answers_by_name_in_json(
    data: Generated, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["query", "cost_per_success", "--param", "tenant=acme", "-p", "as_of=2026-11-20"]
    assert main([*argv, "--json"]) == 0
    records = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Equal up to the order floats were summed in, which background merges change.
    for record, row in zip(records, ask("cost_per_success", tenant="acme"), strict=True):
        same(record, row)
    assert [r["task"] for r in records] == ["chat", "code", "extraction"]
    assert main(argv) == 0  # the table: a header and a row per task
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["tenant", "task", "requests", "answered", "cost_usd",
                                "cost_per_answer_usd"]  # fmt: skip
    assert len(lines) == 4


def test_the_command_lists_its_questions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--list", "--json"]) == 0
    listed = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [q["name"] for q in listed] == query_names()
    assert all(q["title"] and q["answers"] for q in listed)
    assert listed[0]["params"]["budget_usd"]["default"] == "config"


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["query", "cost_of_everything"], "no shipped query 'cost_of_everything'"),
        (["query", "savings", "--param", "colour=red"], "savings has no parameter colour"),
        (["query", "savings", "--param", "days=many"], "days='many': not a UInt32"),
        (["query", "savings", "--param", "premium_model=gpt-9"], "'gpt-9' is not a model"),
        (["query", "SELECT {n:UInt8} AS n"], "query needs --param n=VALUE"),
    ],
)
def test_the_command_refuses_what_it_cannot_answer(
    cli_telemetry: TelemetrySink, argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) != 0
    assert reason in capsys.readouterr().err


def test_typed_in_sql_takes_parameters_too(
    cli_telemetry: TelemetrySink, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "SELECT {n:UInt8} * 2 AS n", "-p", "n=21", "--json"]) == 0
    assert capsys.readouterr().out == '{"n":42}\n'
