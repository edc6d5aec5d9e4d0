"""The HTML report from hand-made data: every plot inline, nothing outside the page, escaped."""

import re
from datetime import UTC, datetime, timedelta

from commands.report.html import render_html
from commands.report.plots import PLOTS
from schemas.report import (
    BudgetBurn,
    CostPoint,
    LatencyBin,
    MixPoint,
    ModelSummary,
    ProviderPoint,
    ProviderSummary,
    Report,
    ReportData,
    Totals,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
# Anything that would make a browser fetch: a URL in src/href/url(), an import, a script.
EXTERNAL = re.compile(
    r"""(src|href)\s*=\s*["']?\s*(https?:|//)|url\(\s*["']?(https?:|//)|@import|<script|<link""",
    re.I,
)


def report(models: tuple[str, ...] = ("sim-small", "sim-large")) -> Report:
    hours = [NOW - timedelta(hours=h) for h in range(6, 0, -1)]
    data = ReportData(
        since=NOW - timedelta(days=1), until=NOW, bucket_s=3600,
        totals=Totals(requests=60, ok=57, cost_usd=1.5, tenants=1, first_at=hours[0],
                      last_at=hours[-1]),
        models=[ModelSummary(model=m, requests=30, cost_usd=0.75, p50_ms=40, p95_ms=90,
                             p99_ms=120) for m in models],
        latency_bins=[LatencyBin(model=m, low_ms=10 ** (k / 8), high_ms=10 ** ((k + 1) / 8),
                                 requests=k) for m in models for k in range(12, 18)],
        providers=[ProviderSummary(provider="sim", calls=70, errors=7, answered=57, fallbacks=3)],
        cost_series=[CostPoint(at=h, model=m, cost_usd=0.1, requests=5)
                     for h in hours for m in models],
        provider_series=[ProviderPoint(at=h, provider="sim", calls=12, errors=1, answered=10,
                                       fallbacks=1) for h in hours],
        mix_series=[MixPoint(at=h, task=t, model=m, requests=3)
                    for h in hours for t in ("chat", "code") for m in models],
    )  # fmt: skip
    burn = BudgetBurn(
        tenant="acme", scope="tenant", period="month", budget_usd=10, period_start=datetime(
        2026, 11, 1, tzinfo=UTC), period_end=datetime(2026, 12, 1, tzinfo=UTC), spent_usd=4,
        daily_rate_usd=0.2, days_to_exhaustion=30, projected_usd=5.9,
        cumulative=[(datetime(2026, 11, 1, tzinfo=UTC), 0.0), (NOW, 4.0)],
    )  # fmt: skip
    return Report(generated_at=NOW, data=data, burn=[burn])


def test_every_plot_is_inline_and_nothing_is_fetched() -> None:
    page = render_html(report())
    assert page.count("<svg") == len(PLOTS) == 5
    assert "<img" not in page
    assert EXTERNAL.search(page) is None
    for section in ("cost", "latency", "mix", "burn", "providers"):
        assert f'<section id="{section}">' in page
    # The svg elements are whole: as many closed as opened, ids unique across the page.
    assert page.count("</svg>") == 5
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    references = re.findall(r'(?:href="#|url\(#)([^")]+)', page)
    assert references and set(references) <= set(ids)


def test_the_check_for_external_references_can_fail() -> None:
    for bad in ('<img src="https://x.example/a.png">', "<link href='//cdn/x.css'>",
                "style='background: url(http://x/y)'", "<script>1</script>"):  # fmt: skip
        assert EXTERNAL.search(bad) is not None


def test_names_are_escaped() -> None:
    page = render_html(report(models=("<b>odd</b>", "sim-large")))
    assert "<b>odd</b>" not in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page


def test_an_empty_report_still_has_every_plot() -> None:
    empty = Report(
        generated_at=NOW,
        data=ReportData(since=NOW - timedelta(days=1), until=NOW, bucket_s=3600, totals=Totals()),
    )
    page = render_html(empty)
    assert page.count("<svg") == 5
    assert "no data in the window" in page and "no budgets in the config" in page
