"""The Grafana dashboard (docs/grafana/switchyard.json) asks only for what the workers export:
every metric an expression names, every label it matches or groups by, and every label
a legend shows. Renaming a metric or a label without the dashboard fails here."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.observe.metrics import ROLES

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "switchyard.json"
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}  # fmt: skip

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w$.])([A-Za-z_:][\w:]*)\b(?!\s*\()")


def exported() -> dict[str, set[str]]:
    """Every sample name the three workers can export -> its labels."""
    names: dict[str, set[str]] = {}
    for kind in ROLES.values():
        for name, labels in kind(CollectorRegistry()).labels.items():
            names.setdefault(name, set()).update(labels)
    return names


def problems(expr: str, legend: str, known: dict[str, set[str]]) -> list[str]:
    """What in one PromQL expression (and its legend) names something not exported."""
    found: list[str] = []
    text = re.sub(r"\$\w+|\[[^\]]*\]", " ", _STRING.sub('""', expr))
    metrics: set[str] = set()
    for metric, matchers in _SELECTOR.findall(text):
        if metric:
            metrics.add(metric)
        for label in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers):
            if metric in known and label not in known[metric] | TARGET_LABELS:
                found.append(f"{metric} has no label {label!r}")
    grouped = {label.strip() for group in _GROUPING.findall(text) for label in group.split(",")}
    bare = _GROUPING.sub(" ", _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", text))
    metrics |= {
        name
        for name in _IDENTIFIER.findall(bare)
        if name.lower() not in KEYWORDS and not name[0].isdigit()
    }
    if not metrics:
        found.append("names no metric")
    found += [f"{name} is not exported" for name in sorted(metrics) if name not in known]
    labels = set().union(*(known.get(m, set()) for m in metrics)) | TARGET_LABELS
    found += [f"groups by {g!r}, which none of its metrics has" for g in grouped - {""} - labels]
    shown = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    if grouped:
        found += [f"legend shows {s!r}, which it does not group by" for s in shown - grouped]
    return found


def _targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in dashboard["panels"]:
        for nested in [panel, *panel.get("panels", [])]:
            for target in nested.get("targets", []):
                yield nested["title"], target


def test_every_expression_names_only_exported_metrics_and_labels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported()
    targets = list(_targets(dashboard))
    assert len(targets) > 30  # the file was read, panels and all
    wrong = {
        f"{title}: {target['expr']}": found
        for title, target in targets
        if (found := problems(target["expr"], target.get("legendFormat", ""), known))
    }
    assert wrong == {}


def test_template_variables_name_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    query = variables["tenant"]["definition"]
    metric, label = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query).groups()  # type: ignore[union-attr]
    assert label in known[metric]


def test_every_panel_reads_the_chosen_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for title, target in _targets(dashboard):
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title


def test_the_dashboard_covers_the_issue_list() -> None:
    exprs = " ".join(target["expr"] for _, target in _targets(json.loads(DASHBOARD.read_text())))
    for needed in [
        "histogram_quantile(0.99, sum by (le, model) (rate(switchyard_provider_request_duration",
        "switchyard_routing_decisions_total",
        "switchyard_provider_cost_usd_total",
        "switchyard_budget_limit_usd",
        "switchyard_circuit_state",
        "switchyard_consumer_lag_records",
        "switchyard_provider_fallbacks_total",
        "switchyard_clickhouse_insert_rows_total",
    ]:
        assert needed in exprs


@pytest.mark.parametrize(
    ("expr", "legend", "expected"),
    [
        ("sum(rate(switchyard_jobs_total[5m]))", "", ["switchyard_jobs_total is not exported"]),
        ("rate(switchyard_provider_request_duration_seconds[5m])", "",
         ["switchyard_provider_request_duration_seconds is not exported"]),
        ('switchyard_replies_total{colour="red"}', "",
         ["switchyard_replies_total has no label 'colour'"]),
        ("sum by (request_id) (switchyard_replies_total)", "",
         ["groups by 'request_id', which none of its metrics has"]),
        ("sum by (status) (switchyard_replies_total)", "{{tenant}}",
         ["legend shows 'tenant', which it does not group by"]),
        ("vector(1)", "", ["names no metric"]),
        ('sum by (le) (rate(switchyard_router_batch_duration_seconds_bucket{job="x"}[1m]))',
         "", []),
    ],
)  # fmt: skip
def test_the_check_finds_what_is_not_exported(expr: str, legend: str, expected: list[str]) -> None:
    assert problems(expr, legend, exported()) == expected
