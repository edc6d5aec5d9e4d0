import pytest
from pydantic import ValidationError

from simulator import FakeModelProfile, OutageWindow, SimulatorSettings


def test_defaults_are_four_fault_free_models() -> None:
    settings = SimulatorSettings()
    assert list(settings.models) == ["sim-small", "sim-medium", "sim-large", "sim-local"]
    assert [p.latency_ms for p in settings.models.values()] == [40, 120, 300, 80]
    for profile in settings.models.values():
        assert profile.error_rate == 0.0
        assert profile.rate_limit_rps is None
        assert profile.outages == []
    assert settings.seed == 7
    assert settings.latency_scale == 1.0


def test_sample_config_block_validates() -> None:
    settings = SimulatorSettings.model_validate(
        {"seed": 3, "models": {"m": {"latency_ms": 5, "outages": [{"start_s": 1, "end_s": 2}]}}}
    )
    assert settings.models["m"].outages == [OutageWindow(start_s=1, end_s=2)]
    assert settings.models["m"].context_window == 32768


@pytest.mark.parametrize(("start", "end"), [(5, 5), (5, 4), (-1, 3)])
def test_outage_window_must_be_ordered_and_not_negative(start: float, end: float) -> None:
    with pytest.raises(ValidationError):
        OutageWindow(start_s=start, end_s=end)


@pytest.mark.parametrize(
    "fields",
    [{"error_rate": 1.5}, {"rate_limit_rps": 0}, {"latency_ms": -1}, {"colour": "red"}],
)
def test_profile_rejects_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FakeModelProfile.model_validate(fields)


def test_settings_are_frozen_and_need_a_model() -> None:
    settings = SimulatorSettings()
    with pytest.raises(ValidationError):
        settings.seed = 8  # type: ignore[misc]
    with pytest.raises(ValidationError):
        SimulatorSettings(models={})
