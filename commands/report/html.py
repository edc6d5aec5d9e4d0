"""The report as one self-contained HTML file: inline CSS, plots as inline SVG, no scripts.

Nothing on the page refers outside it (no stylesheet, font, script or image
URL), so it can be mailed, archived or opened offline, and shows the same
everywhere. Tables are the terminal's (``commands.report.tables``), escaped.
"""

from collections.abc import Callable
from html import escape
from pathlib import Path

from commands.report.plots import PLOTS
from commands.report.tables import (
    Table,
    burn_table,
    model_table,
    provider_table,
    share,
    usd,
)
from schemas.report import Report

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       margin: 0; background: #f6f7f9; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0 0 8px; }
.meta { color: #5f6368; margin-bottom: 18px; }
.cards { display: flex; gap: 12px; margin-bottom: 18px; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid #e3e5e8; border-radius: 8px; padding: 10px 16px;
        min-width: 150px; }
.card b { display: block; font-size: 20px; }
.card span { color: #5f6368; font-size: 12px; }
section { background: #fff; border: 1px solid #e3e5e8; border-radius: 8px; padding: 14px 20px;
          margin-bottom: 14px; }
.note { color: #5f6368; margin: -6px 0 8px; font-size: 13px; }
.side { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 20px; align-items: start; }
.plot svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin-top: 10px; font-size: 13px; }
th, td { padding: 3px 12px 3px 0; text-align: left; border-bottom: 1px solid #eceef1; }
th { color: #5f6368; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
"""

Section = tuple[str, str, str, Callable[[Report], Table] | None]
SECTIONS: tuple[Section, ...] = (
    (
        "cost",
        "Cost over time per model",
        "Spend per time bucket, stacked by answering model; the table covers the whole window "
        "(latency is end to end, queueing and retries included).",
        model_table,
    ),
    (
        "latency",
        "Latency distribution per model",
        "Share of each model's requests per latency bin (8 bins per decade).",
        None,
    ),
    (
        "mix",
        "Routing mix per task over time",
        "Per task, the share of its requests each model answered, per time bucket.",
        None,
    ),
    (
        "burn",
        "Budget burn-down",
        "Spend in each budget's current period (from telemetry) against its limit; dotted: the "
        "period's average daily rate carried forward.",
        burn_table,
    ),
    (
        "providers",
        "Error and fallback rates per provider",
        "Error rate: failed calls (error, timeout, unavailable, rate limited) over calls. Fallback "
        "rate: answers that came after an earlier attempt failed or was skipped, over answers.",
        provider_table,
    ),
)


def render_html(report: Report) -> str:
    """The whole page."""
    plots = {name: draw(report) for name, draw in PLOTS}
    sections = []
    for name, title, note, table in SECTIONS:
        body = f'<div class="plot">{plots[name]}</div>'
        if table is not None:
            body += _table(table(report))
        layout = "side" if name == "cost" else "stack"  # the model table fits beside its plot
        sections.append(
            f'<section id="{name}"><h2>{escape(title)}</h2><p class="note">{escape(note)}</p>'
            f'<div class="{layout}">{body}</div></section>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Switchyard report</title>"
        f"<style>{CSS}</style></head><body><main>"
        f"{_header(report)}{''.join(sections)}</main></body></html>\n"
    )


def write_html(report: Report, path: Path) -> Path:
    """Write the page to ``path`` (its folder made if missing); return the absolute path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path.resolve()


def _header(report: Report) -> str:
    data, totals = report.data, report.data.totals
    scope = f"tenant {data.tenant}" if data.tenant else "all tenants"
    meta = (
        f"{data.since:%Y-%m-%d %H:%M} to {data.until:%Y-%m-%d %H:%M} UTC, {scope}; "
        f"generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    cards = (
        (f"{totals.requests:,}", "requests"),
        (share(totals.ok, totals.requests), "answered ok"),
        (usd(totals.cost_usd), "cost USD"),
        (f"{totals.input_tokens:,} / {totals.output_tokens:,}", "tokens in / out"),
        (f"{totals.tenants:,}", "tenants"),
    )
    card_html = "".join(f"<div class=card><b>{escape(v)}</b><span>{escape(k)}</span></div>"
                        for v, k in cards)  # fmt: skip
    return (
        f'<h1>Switchyard report</h1><div class="meta">{escape(meta)}</div>'
        f'<div class="cards">{card_html}</div>'
    )


def _table(table: Table) -> str:
    columns, rows = table
    if not rows:
        return ""
    classes = [' class="num"' if c.right else "" for c in columns]
    head = "".join(f"<th{k}>{escape(c.header)}</th>" for c, k in zip(columns, classes, strict=True))
    body = "".join(
        "<tr>" + "".join(f"<td{k}>{escape(v)}</td>" for v, k in zip(row, classes, strict=True))
        + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
