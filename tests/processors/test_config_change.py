"""Live config changes: versions, what needs a restart, diffs without secrets, and a
worker switching only to a version it may run."""

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from processors.config_change import applied, config_diff, config_row, restart_only_changes
from schemas.config import SwitchyardConfig
from schemas.live_config import AppliedConfig
from streams.kafka.seals import SealGate
from streams.workers.live_config import LiveConfig
from tests.helpers import sample_config

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
ROTATED = "a-brand-new-secret"  # a test value that must never be shown


def _edited(config: SwitchyardConfig, change: Any) -> SwitchyardConfig:
    data = config.model_dump(mode="json", context={"reveal_secrets": True})
    change(data)
    return SwitchyardConfig.model_validate(data)


def test_a_version_survives_the_topic_and_changes_with_any_field() -> None:
    config = sample_config()
    record = applied(config, None, "ops", NOW)
    back = SwitchyardConfig.model_validate(AppliedConfig.model_validate_json(
        record.model_dump_json()).config)  # fmt: skip
    assert back.version == config.version == record.version
    richer = _edited(config, lambda c: c["tenants"]["acme"].update(budget_usd=51))
    assert richer.version != config.version
    copied = config.model_copy(update={"tenants": richer.tenants})
    assert copied.version == richer.version  # not the cached digest of the original


@pytest.mark.parametrize(("change", "needs"), [
    (lambda c: c["tenants"]["acme"].update(allowed_providers=["onprem"]), []),
    (lambda c: c["models"][0].update(price_in_per_mtok=9.0, data_classes=["public"]), []),
    (lambda c: c["routing"].update(quality="premium"), []),
    (lambda c: c["models"][0].update(max_concurrency=3), ["models.sim-small.max_concurrency"]),
    (lambda c: c["models"][1].update(base_url="http://10.0.0.1/v1"),
     ["models.sim-medium.base_url"]),
    (lambda c: c["dispatch"].update(max_in_flight=10), ["dispatch"]),
    (lambda c: c["models"].pop(), ["models (added: none, removed: ['sim-local'])"]),
])  # fmt: skip
def test_what_only_a_restart_applies(change: Any, needs: list[str]) -> None:
    config = sample_config()
    assert restart_only_changes(config, _edited(config, change)) == needs


def test_the_diff_and_the_table_row_never_show_a_secret() -> None:
    config = sample_config()
    rotated = _edited(config, lambda c: c["tenants"]["acme"]["keys"][0].update(
        demo_secret=ROTATED))  # fmt: skip
    assert rotated.version != config.version  # a new secret is a new version
    diff = config_diff(config, rotated)
    row = config_row(applied(rotated, config, "ops", NOW))
    for text in (diff, row.diff, row.content):
        assert ROTATED not in text and "demo-only-acme-1" not in text
    assert row.previous == config.version and row.applied_by == "ops"


def _live(running: SwitchyardConfig, seen: list[SwitchyardConfig]) -> LiveConfig:
    return LiveConfig("127.0.0.1:1", "t.config", SealGate(b"k" * 32, "test"), running, seen.append)


def test_a_worker_switches_only_to_a_whole_version_it_may_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = sample_config()
    seen: list[SwitchyardConfig] = []
    live = _live(config, seen)
    onprem = _edited(config, lambda c: c["tenants"]["acme"].update(allowed_providers=["onprem"]))
    restart = _edited(config, lambda c: c["models"][0].update(max_concurrency=3))
    tampered = applied(onprem, config, "ops", NOW).model_copy(update={"version": "0" * 16})
    broken = applied(onprem, config, "ops", NOW)
    broken.config["tenants"]["acme"]["budget_usd"] = -1
    with caplog.at_level(logging.ERROR):
        for record in (applied(restart, config, "ops", NOW), tampered, broken):
            live.apply(record)
    assert seen == [] and live.current is config
    assert len([r for r in caplog.records if "refused" in r.message]) == 3
    live.apply(applied(onprem, config, "ops", NOW))
    live.apply(applied(onprem, config, "ops", NOW))  # read again: no second switch
    assert [c.version for c in seen] == [onprem.version] and live.current is seen[0]
