import pytest

from schemas.config_file import load_config, parse_config
from schemas.errors import ConfigError
from tests.helpers import SAMPLE_CONFIG

MINIMAL = """
models:
  - name: m1
    provider: sim
    base_url: http://127.0.0.1:1/v1
    price_in_per_mtok: 1
    price_out_per_mtok: 2
    context_window: 1000
    region: us
tenants:
  acme: {}
"""


def test_sample_config_is_valid() -> None:
    config = load_config(SAMPLE_CONFIG)
    assert {m.name for m in config.models} >= {"sim-small", "sim-large"}
    assert config.simulator is not None


def test_errors_name_path_and_line() -> None:
    text = MINIMAL.replace("price_out_per_mtok: 2", "price_out_per_mtok: -2").replace(
        "region: us", "region: us\n    colour: red"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "bad.yaml")
    issues = {i.path: i for i in caught.value.issues}
    assert issues["models[0].price_out_per_mtok"].line == 7
    assert issues["models[0].colour"].line == 10
    assert "greater than or equal to 0" in issues["models[0].price_out_per_mtok"].message


def test_env_references_are_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_URL", "http://127.0.0.1:9999/v1")
    config = parse_config(MINIMAL.replace("http://127.0.0.1:1/v1", "${SIM_URL}"))
    assert str(config.models[0].base_url) == "http://127.0.0.1:9999/v1"


def test_missing_env_reference_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE is not set"):
        parse_config(MINIMAL.replace("http://127.0.0.1:1/v1", "${NOT_SET_ANYWHERE}"))


def test_duplicate_model_names_rejected() -> None:
    doubled = MINIMAL.replace(
        "tenants:", MINIMAL.split("models:")[1].split("tenants:")[0] + "tenants:"
    )
    with pytest.raises(ConfigError, match="repeated: m1"):
        parse_config(doubled)
