"""The bench's table for people: one row per figure, the command's JSON for programs."""

from typing import Any

from commands.console import Column, print_table

Row = tuple[str, str, str]

_COLUMNS = (Column("scenario", 10), Column("figure", 28), Column("Switchyard", 12, right=True))


def _rows(s: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "e2e" in s:
        e = s["e2e"]
        rows += [
            ("e2e", f"jobs/s ({e['jobs']} jobs, 0 ms)", f"{e['jobs_per_s']:,.0f}"),
            ("e2e", "reply latency p50 / p99 ms", f"{e['p50_ms']:,.0f} / {e['p99_ms']:,.0f}"),
        ]
    if "inflight" in s:
        i = s["inflight"]
        rss = ", ".join(f"{k} {v:.0f}" for k, v in i["peak_rss_mb"].items())
        rows += [
            ("inflight", f"s to answer {i['jobs']} ({i['latency_ms']:g} ms)", f"{i['seconds']}"),
            ("inflight", "peak RSS MB", rss),
        ]
    if "idle" in s:
        d = s["idle"]
        rows.append(("idle", "added latency p50 / p99 ms", f"{d['p50_ms']} / {d['p99_ms']}"))
    if "routing" in s:
        r = s["routing"]
        rows += [
            ("routing", f"jobs/s ({r['jobs']} queued)", f"{r['jobs_per_s']:,.0f}"),
            ("routing", "routing time p99 ms", f"{r['p99_routing_ms']}"),
        ]
    if "sink" in s:
        k = s["sink"]
        rows.append(("sink", f"rows/s ({k['rows']:,} rows)", f"{k['rows_per_s']:,.0f}"))
    return rows


def print_report(result: dict[str, Any]) -> None:
    print_table(_COLUMNS, _rows(result["scenarios"]), title="switchyard bench")
