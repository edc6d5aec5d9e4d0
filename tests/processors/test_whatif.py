from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.whatif import (
    LoggedRequest,
    ObservedLatency,
    compare,
    decide,
    parse_since,
    stand_in,
)
from schemas.config import SwitchyardConfig
from tests.helpers import sample_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config() -> SwitchyardConfig:
    return sample_config()


def logged(request_id: str = "r-1", **fields: Any) -> LoggedRequest:
    values: dict[str, Any] = {
        "request_id": request_id,
        "tenant": "acme",
        "task": "chat",
        "quality": "balanced",
        "data_classification": "internal",
        "prompt_chars": 400,
        "input_tokens": 100,
        "output_tokens": 200,
    }
    values.update(fields)
    return LoggedRequest(**values)


def priced(config: SwitchyardConfig, model: str, factor: float) -> SwitchyardConfig:
    """``config`` with one model's prices multiplied by ``factor``."""
    models = [
        m.model_copy(
            update={
                "price_in_per_mtok": m.price_in_per_mtok * factor,
                "price_out_per_mtok": m.price_out_per_mtok * factor,
            }
        )
        if m.name == model
        else m
        for m in config.models
    ]
    return config.model_copy(update={"models": models})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), (" 30m ", timedelta(minutes=30))],
)
def test_parse_since(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d7", "0d", "1w", "-3h", "1.5h"])
def test_parse_since_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="positive count of d, h or m"):
        parse_since(text)


def test_stand_in_has_the_logged_shape_and_no_text() -> None:
    request = stand_in(logged(quality_target=0.8, prompt_chars=37, output_tokens=90))
    assert (request.request_id, request.tenant, request.task) == ("r-1", "acme", "chat")
    assert (request.quality, request.quality_target, request.max_tokens) == ("balanced", 0.8, 90)
    assert request.data_classification == "internal"
    assert request.prompt_chars() == 37
    assert set(request.messages[0].text()) == {"x"}


def test_stand_in_leaves_unlogged_values_to_the_router() -> None:
    request = stand_in(
        logged(task="", quality="", data_classification="", quality_target=0, output_tokens=0)
    )
    assert request.task is None
    assert request.quality is None
    assert request.quality_target is None
    assert request.data_classification is None
    assert request.max_tokens is None


def test_decide_prices_logged_tokens_and_uses_typical_latency(config: SwitchyardConfig) -> None:
    outcome = decide(logged(), config, {}, NOW)
    assert outcome is not None
    small = config.model("sim-small")
    assert small is not None
    assert outcome.model == "sim-small"  # cheapest with chat quality >= 0.7
    assert outcome.cost_usd == pytest.approx(small.cost_usd(100, 200))
    assert outcome.quality == small.quality_for("chat")
    assert outcome.latency_ms == small.typical_latency_ms


def test_observed_latency_counts_from_enough_samples(config: SwitchyardConfig) -> None:
    few = {"sim-small": ObservedLatency(samples=19, mean_ms=42.0)}
    enough = {"sim-small": ObservedLatency(samples=20, mean_ms=42.0)}
    assert decide(logged(), config, few, NOW).latency_ms == 300  # type: ignore[union-attr]
    assert decide(logged(), config, enough, NOW).latency_ms == 42  # type: ignore[union-attr]


def test_unknown_tenant_and_unroutable_requests_are_rejected(config: SwitchyardConfig) -> None:
    assert decide(logged(tenant="nobody"), config, {}, NOW) is None
    # Only sim-local takes restricted data (chat 0.65, below the 0.7 floor: routed as a
    # visible downgrade); without sim-local nothing can take it.
    restricted = logged(data_classification="restricted")
    assert decide(restricted, config, {}, NOW) is not None
    without_local = config.model_copy(
        update={"models": [m for m in config.models if m.name != "sim-local"]}
    )
    assert decide(restricted, without_local, {}, NOW) is None


def test_doubling_a_price_shows_only_where_that_model_serves(config: SwitchyardConfig) -> None:
    rows = [
        logged("a-chat"),  # sim-small
        logged("a-code", task="code"),  # sim-medium
        logged("g-chat", tenant="globex", quality=""),  # premium by default: sim-medium
        logged("i-chat", tenant="initech", quality="economy"),  # sim-local
    ]
    report = compare(rows, config, priced(config, "sim-medium", 2), {}, NOW)
    by_group = {(g.tenant, g.task): g for g in report.groups}
    assert by_group[("acme", "code")].cost_change_pct == pytest.approx(100)
    assert by_group[("globex", "chat")].cost_change_pct == pytest.approx(100)
    assert by_group[("acme", "chat")].cost_change_pct == 0
    assert by_group[("initech", "chat")].cost_change_pct == 0
    assert all(g.changed == 0 and g.rejected_after == 0 for g in report.groups)
    total = report.total
    assert (total.tenant, total.task, total.n, total.compared) == ("*", "*", 4, 4)
    assert total.cost_after_usd > total.cost_before_usd
    assert report.requests == 4


def test_a_dearer_model_loses_its_traffic(config: SwitchyardConfig) -> None:
    rows = [logged(f"r-{i}") for i in range(3)]
    report = compare(rows, config, priced(config, "sim-small", 100), {}, NOW)
    (group,) = report.groups
    assert (group.n, group.changed, group.changed_share) == (3, 3, 1.0)
    assert group.moves == {"sim-small -> sim-medium": 3}
    assert group.quality_after > group.quality_before  # type: ignore[operator]
    assert group.latency_after_ms == 800
    assert group.cost_change_pct is not None
    assert group.cost_change_pct > 0


def test_rows_the_new_config_rejects_are_counted_apart(config: SwitchyardConfig) -> None:
    rows = [logged("a-1"), logged("g-1", tenant="globex")]
    tenants = {k: v for k, v in config.tenants.items() if k != "globex"}
    report = compare(rows, config, config.model_copy(update={"tenants": tenants}), {}, NOW)
    by_tenant = {g.tenant: g for g in report.groups}
    globex = by_tenant["globex"]
    assert (globex.n, globex.compared, globex.rejected_after) == (1, 0, 1)
    assert (globex.cost_before_usd, globex.cost_change_pct, globex.quality_after) == (0, 0, None)
    assert by_tenant["acme"].rejected_after == 0
    assert report.total.rejected_after == 1


def test_no_rows_no_groups(config: SwitchyardConfig) -> None:
    report = compare([], config, config, {}, NOW)
    assert report.groups == []
    assert (report.total.n, report.total.changed_share, report.total.quality_before) == (0, 0, None)
