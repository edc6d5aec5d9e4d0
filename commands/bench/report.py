"""The bench's table for people: one row per figure, with LiteLLM's and the bare
client's figure beside Switchyard's where the run has them."""

from typing import Any

from commands.console import Column, print_table

Row = tuple[str, str, str, str, str]

_COLUMNS = (
    Column("scenario", 9),
    Column("figure", 30),
    Column("Switchyard", 12, right=True),
    Column("LiteLLM (best)", 14, right=True),
    Column("bare client", 12, right=True),
)


def _best(s: dict[str, Any], clients: str, side: str, key: str, fmt: str) -> str:
    run = s.get(clients, {}).get("best", {}).get(side)
    return format(run[key], fmt) + f" ({run['label'].split()[-1]})" if run else "-"


def _e2e_rows(s: dict[str, Any]) -> list[Row]:
    e = s["e2e"]
    return [
        ("e2e", f"jobs/s, {e['jobs']:,} jobs, 0 ms", f"{e['jobs_per_s']:,.0f}",
         _best(s, "clients_e2e", "litellm", "jobs_per_s", ",.0f"),
         _best(s, "clients_e2e", "ceiling", "jobs_per_s", ",.0f")),
        ("e2e", "latency p50 / p99 ms", f"{e['p50_ms']:,.0f} / {e['p99_ms']:,.0f}", "", ""),
    ]  # fmt: skip


def _inflight_rows(s: dict[str, Any]) -> list[Row]:
    i = s["inflight"]
    rss = ", ".join(f"{k} {v:.0f}" for k, v in i["peak_rss_mb"].items())
    return [
        ("inflight", f"s to answer {i['jobs']:,} ({i['latency_ms']:g} ms)", f"{i['seconds']}",
         _best(s, "clients_inflight", "litellm", "seconds", ".1f"),
         _best(s, "clients_inflight", "ceiling", "seconds", ".1f")),
        ("inflight", "peak RSS MB", rss,
         _best(s, "clients_inflight", "litellm", "peak_rss_mb", ".0f"), ""),
    ]  # fmt: skip


def _rows(s: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "e2e" in s:
        rows += _e2e_rows(s)
    if "inflight" in s:
        rows += _inflight_rows(s)
    if "idle" in s:
        d = s["idle"]
        rows.append(("idle", "added latency p50 / p99 ms", f"{d['p50_ms']} / {d['p99_ms']}",
                     "", ""))  # fmt: skip
    if "routing" in s:
        r = s["routing"]
        rows += [
            ("routing", f"jobs/s, {r['jobs']:,} queued", f"{r['jobs_per_s']:,.0f}", "", ""),
            ("routing", "routing time p99 ms", f"{r['p99_routing_ms']}", "", ""),
        ]
    if "scaleout" in s:
        o = s["scaleout"]
        rows.append(("scaleout", f"jobs/s, {o['jobs']:,} jobs, 1 -> 2 of each",
                     f"{o['one']:,.0f} -> {o['two']:,.0f}", "", ""))  # fmt: skip
    if "sink" in s:
        k = s["sink"]
        rows.append(("sink", f"rows/s, {k['rows']:,} rows", f"{k['rows_per_s']:,.0f}", "", ""))
    return rows


def print_report(result: dict[str, Any]) -> None:
    print_table(_COLUMNS, _rows(result["scenarios"]), title="switchyard bench")
