"""The report's five plots, drawn with matplotlib (Agg) and returned as inline SVG text.

Each plot is a function of the ``Report`` alone. A model keeps its colour in
every plot. Time series are step plots over the report's buckets: a bucket's
value holds from its start to the next one, so a window of one bucket still
shows. The SVG keeps text as text (small, searchable), drops matplotlib's
metadata block (so the page references nothing outside itself) and prefixes its
ids with the plot's name (so five figures on one page do not share an id).
"""

import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from commands.report.tables import NONE, usd
from processors.report_math import bucket_range
from schemas.report import BudgetBurn, Report

Plot = Callable[[Report], str]
GREY = "#9a9a9a"
# A budget's limit is drawn when spent and projected reach this share of it (see _burn_axes).
LIMIT_IN_VIEW = 0.2
_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(href="#|url\(#)([^")]+)')
_HEADER = re.compile(r"<\?xml.*?\?>\s*|<!DOCTYPE.*?>\s*|<metadata>.*?</metadata>\s*", re.S)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 10, "axes.titlesize": 10,
                         "axes.spines.top": False, "axes.spines.right": False})  # fmt: skip
    return plt


def _svg(fig: Any, name: str) -> str:
    """``fig`` as an ``<svg>`` element whose ids (and references to them) start with
    ``name``: matplotlib numbers ids per figure, and one page holds five figures."""
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = _HEADER.sub("", buffer.getvalue()).strip()
    ids = set(_ID.findall(text))
    text = _ID.sub(lambda m: f'id="{name}-{m[1]}"', text)
    return _REFERENCE.sub(lambda m: f"{m[1]}{name}-{m[2]}" if m[2] in ids else m[0], text)


def model_colours(report: Report) -> dict[str, str]:
    """One colour per model, the same in every plot; requests no model answered in grey."""
    names = sorted({m.model for m in report.data.models} | {p.model for p in
                   report.data.mix_series})  # fmt: skip
    colours = {name: f"C{i % 10}" for i, name in enumerate(n for n in names if n)}
    return colours | {"": GREY}


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)


def _empty(ax: Any, text: str = "no data in the window") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=GREY)
    ax.set_xticks([])
    ax.set_yticks([])


def _steps(report: Report) -> list[datetime]:
    """Every bucket start of the window's data, then the last bucket's end (for step plots).

    The buckets between the first and the last request, and any a series has beyond them
    (a request's attempts can finish in the bucket before the request's own)."""
    data = report.data
    if data.totals.first_at is None or data.totals.last_at is None:
        return []
    starts = set(bucket_range(data.totals.first_at, data.totals.last_at, data.bucket_s))
    for series in (data.cost_series, data.mix_series, data.provider_series):
        starts.update(p.at for p in series)
    ordered = sorted(starts)
    return [*ordered, ordered[-1] + timedelta(seconds=data.bucket_s)]


def _percent(ax: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def _series(
    points: Iterable[tuple[datetime, str, float]], xs: list[datetime]
) -> dict[str, list[float]]:
    """Values per name on every bucket of ``xs`` (0 where absent), the last repeated."""
    index = {at: i for i, at in enumerate(xs[:-1])}
    found: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(xs))
    for at, name, value in points:
        found[name][index[at]] += value
    for values in found.values():
        values[-1] = values[-2]
    return dict(found)


def cost_over_time(report: Report) -> str:
    """Spend per bucket, stacked by model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.4, 3.4))
    xs = _steps(report)
    colours = model_colours(report)
    points = ((p.at, p.model, p.cost_usd) for p in report.data.cost_series)
    series = sorted(_series(points, xs).items(), key=lambda item: -sum(item[1])) if xs else []
    if series:
        ax.stackplot(xs, *(v for _, v in series), step="post", alpha=0.85,
                     labels=[m or NONE for m, _ in series],
                     colors=[colours.get(m, GREY) for m, _ in series])  # fmt: skip
        ax.set_ylabel(f"USD per {_bucket_text(report.data.bucket_s)}")
        ax.legend(loc="upper left", fontsize=8, ncols=min(len(series), 4), frameon=False)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # room for the legend
        _time_axis(ax)
    else:
        _empty(ax)
    return _svg(fig, "cost")


def latency_distributions(report: Report) -> str:
    """Per model, the share of its requests in each log-spaced latency bin, p50/p95/p99 marked."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 2.6))
    colours = model_colours(report)
    bins: dict[str, dict[float, int]] = defaultdict(dict)
    for b in report.data.latency_bins:
        bins[b.model][b.low_ms] = b.requests
    edges = sorted({b.low_ms for b in report.data.latency_bins} |
                   {b.high_ms for b in report.data.latency_bins})  # fmt: skip
    for m in report.data.models:
        counts = np.array([bins[m.model].get(low, 0) for low in edges[:-1]], dtype=float)
        if counts.sum() == 0:
            continue
        colour = colours.get(m.model, GREY)
        label = (
            f"{m.model or NONE}: p50 {m.p50_ms:,.0f} / p95 {m.p95_ms:,.0f} / p99 {m.p99_ms:,.0f} ms"
        )
        ax.stairs(counts / counts.sum(), edges, color=colour, lw=1.6, label=label)
    if edges:
        ax.set_xscale("log")
        ax.set_xlabel("end-to-end latency, ms (log scale)")
        ax.set_ylabel("share of the model's requests")
        _percent(ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
        ax.grid(alpha=0.3)
    else:
        _empty(ax)
    return _svg(fig, "latency")


def routing_mix(report: Report) -> str:
    """Per task (small multiples), each model's share of its requests per bucket, stacked."""
    plt = _pyplot()
    tasks = sorted({p.task for p in report.data.mix_series})
    xs = _steps(report)
    columns = min(max(len(tasks), 1), 4)
    rows = max((len(tasks) + columns - 1) // columns, 1)
    fig, axes = plt.subplots(rows, columns, figsize=(12, 1.6 * rows + 0.4), squeeze=False,
                             sharex=True, sharey=True)  # fmt: skip
    colours = model_colours(report)
    for ax, task in zip(axes.flat, tasks, strict=False):
        points = ((p.at, p.model, p.requests) for p in report.data.mix_series if p.task == task)
        series = sorted(_series(points, xs).items())
        totals = [sum(values) for values in zip(*(v for _, v in series), strict=True)]
        shares = [[v / t if t else 0.0 for v, t in zip(values, totals, strict=True)]
                  for _, values in series]  # fmt: skip
        ax.stackplot(xs, *shares, step="post", colors=[colours.get(m, GREY) for m, _ in series])
        ax.set_title(f"{task or NONE} ({sum(totals[:-1]):,.0f} requests)", fontsize=9)
        ax.set_ylim(0, 1)
        _percent(ax)
        _time_axis(ax)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.set_visible(not tasks)
        _empty(ax)
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=m or NONE) for m, c in
               colours.items() if m in {p.model for p in report.data.mix_series}]  # fmt: skip
    fig.tight_layout()
    if handles:  # above the grid; the tight bounding box takes it in
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                   ncols=len(handles), fontsize=8, frameon=False)  # fmt: skip
    return _svg(fig, "mix")


def budget_burn(report: Report) -> str:
    """Per budget, spend so far in its period against the limit, and the projection."""
    plt = _pyplot()
    burns = report.burn
    columns = min(max(len(burns), 1), 3)
    rows = max((len(burns) + columns - 1) // columns, 1)
    fig, axes = plt.subplots(rows, columns, figsize=(12, 2.4 * rows), squeeze=False)
    for ax, burn in zip(axes.flat, burns, strict=False):
        _burn_axes(ax, burn, report.generated_at)
    for ax in list(axes.flat)[len(burns) :]:
        ax.set_visible(not burns)
        _empty(ax, "no budgets in the config")
    fig.tight_layout()
    return _svg(fig, "burn")


def _burn_axes(ax: Any, burn: BudgetBurn, now: datetime) -> None:
    """Spent (steps), the projection (dotted) and the limit (dashed) if it is in view: a
    limit far above what is spent and projected would flatten both to the axis, so then
    the chart scales to them and the title names the limit."""
    end = burn.period_end or now + timedelta(days=30)
    ax.step([at for at, _ in burn.cumulative], [v for _, v in burn.cumulative], where="post",
            color="C0", lw=2, label="spent")  # fmt: skip
    top = burn.spent_usd
    if burn.daily_rate_usd > 0:
        stop = end
        if burn.days_to_exhaustion is not None:
            stop = min(end, now + timedelta(days=burn.days_to_exhaustion))
        reach = burn.spent_usd + burn.daily_rate_usd * ((stop - now) / timedelta(days=1))
        ax.plot([now, stop], [burn.spent_usd, reach], color="C0", ls=":", lw=1.5,
                label="projected")  # fmt: skip
        top = max(top, reach)
    limit_in_view = top >= LIMIT_IN_VIEW * burn.budget_usd
    if limit_in_view:
        ax.axhline(burn.budget_usd, color="C3", ls="--", lw=1.2, label="limit")
        top = max(top, burn.budget_usd)
    ax.set_xlim(burn.period_start, end)
    ax.set_ylim(0, top * 1.15 or 1)
    ax.set_ylabel("USD")
    limit = "" if limit_in_view else f"\nlimit {usd(burn.budget_usd)} USD, above the chart"
    ax.set_title(f"{burn.tenant} {burn.scope} ({burn.period}){limit}", fontsize=9)
    ax.legend(loc="upper left", fontsize=7.5, frameon=False)
    _time_axis(ax)


def provider_rates(report: Report) -> str:
    """Per provider and bucket: failed calls over calls, and answers by fallback over answers."""
    plt = _pyplot()
    fig, (errors, fallbacks) = plt.subplots(1, 2, figsize=(12, 2.5), sharex=True)
    xs = _steps(report)
    providers = sorted({p.provider for p in report.data.provider_series})
    for index, provider in enumerate(providers):
        mine = {p.at: p for p in report.data.provider_series if p.provider == provider}
        error_rate = [_ratio(mine, at, "errors", "calls") for at in xs[:-1]]
        fallback_rate = [_ratio(mine, at, "fallbacks", "answered") for at in xs[:-1]]
        for ax, values in ((errors, error_rate), (fallbacks, fallback_rate)):
            ax.step(xs, [*values, values[-1]], where="post", color=f"C{index}", lw=1.6,
                    label=provider)  # fmt: skip
    titles = (
        "error rate: failed calls / calls",
        "fallback rate: answers after a fallback / answers",
    )
    for ax, title in zip((errors, fallbacks), titles, strict=True):
        ax.set_title(title)
        if providers:
            _percent(ax)
            ax.set_ylim(bottom=0)
            ax.legend(loc="upper left", fontsize=8, frameon=False)
            _time_axis(ax)
        else:
            _empty(ax)
    fig.tight_layout()
    return _svg(fig, "providers")


def _ratio(points: dict[datetime, Any], at: datetime, part: str, whole: str) -> float:
    point = points.get(at)
    if point is None or not getattr(point, whole):
        return float("nan")  # nothing to rate: a gap in the line
    return float(getattr(point, part)) / float(getattr(point, whole))


def _bucket_text(seconds: int) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 and unit == "day" else f"{count} {unit}"
    return f"{seconds} s"


PLOTS: tuple[tuple[str, Plot], ...] = (
    ("cost", cost_over_time),
    ("latency", latency_distributions),
    ("mix", routing_mix),
    ("burn", budget_burn),
    ("providers", provider_rates),
)
