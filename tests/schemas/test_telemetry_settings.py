"""``observability.telemetry.ttl_days``: known tables only, never negative, over defaults."""

import pytest
from pydantic import ValidationError

from schemas.runtime_settings import TelemetrySettings
from schemas.telemetry import DEFAULT_TTL_DAYS
from sinks.ttl import TTL_COLUMNS


def test_configured_days_override_the_defaults() -> None:
    ttls = TelemetrySettings(ttl_days={"requests": 7, "configs": 0}).effective_ttl_days()
    assert ttls == {**DEFAULT_TTL_DAYS, "requests": 7, "configs": 0}
    assert DEFAULT_TTL_DAYS["configs"] == 0  # config versions outlive every row naming them


@pytest.mark.parametrize(
    ("ttl_days", "reason"),
    [
        ({"request": 7}, "unknown telemetry tables request"),
        ({"audit": -1}, r"0 \(forever\) or more"),
    ],
)
def test_unknown_tables_and_negative_days_are_refused(
    ttl_days: dict[str, int], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        TelemetrySettings(ttl_days=ttl_days)


def test_every_table_with_a_ttl_has_its_time_column() -> None:
    assert set(TTL_COLUMNS) == set(DEFAULT_TTL_DAYS)
