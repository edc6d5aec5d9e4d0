"""The ``switchyard`` command, run in-process through ``commands.cli.main``."""

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from commands.cli import main
from streams.topics import TopicCatalogue
from tests.helpers import SAMPLE_CONFIG, sample_config

REPO = SAMPLE_CONFIG.parent.parent

BAD_CONFIG = """\
models:
  - name: m1
    provider: sim
    base_url: http://127.0.0.1:8811/v1
    price_in_per_mtok: 0.1
    price_out_per_mtok: -2.5
    context_window: 4096
    region: us
    colour: blue
tenants:
  acme: {}
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No broker anywhere: no KAFKA_BOOTSTRAP and an empty state folder."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("KAFKA_BOOTSTRAP", "SWITCHYARD_CONFIG", "SWITCHYARD_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SWITCHYARD_HOME", str(home))
    return home


def test_config_validate_sample(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    config = sample_config()
    assert main(["config", "validate", "config/switchyard.yaml"]) == 0
    out, err = capsys.readouterr()
    assert out == (
        f"config/switchyard.yaml: valid ({len(config.models)} models, "
        f"{len(config.tenants)} tenants)\n"
    )
    assert len(config.models) >= 1
    assert err == ""


def test_config_validate_bad_file_names_paths_and_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CONFIG, encoding="utf-8")
    assert main(["config", "validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"invalid config {path}:"
    issues = lines[1:]
    assert len(issues) == 2
    price = next(i for i in issues if "models[0].price_out_per_mtok" in i)
    assert price.startswith("  line 6: models[0].price_out_per_mtok: ")
    assert "greater than or equal to 0" in price
    extra = next(i for i in issues if "models[0].colour" in i)
    assert extra.startswith("  line 9: models[0].colour: ")
    assert "Extra inputs are not permitted" in extra


def test_config_validate_bad_yaml_gives_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("models:\n  - name: [unclosed\ntenants: {}\n", encoding="utf-8")
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"invalid config {path}:" in err
    assert re.search(r"^  line \d+: <root>: not valid YAML", err, re.MULTILINE)


def test_config_validate_unset_env_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SWITCHYARD_TEST_UNSET_URL", raising=False)
    path = tmp_path / "env.yaml"
    path.write_text(
        BAD_CONFIG.replace("http://127.0.0.1:8811/v1", "${SWITCHYARD_TEST_UNSET_URL}"),
        encoding="utf-8",
    )
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "environment variable SWITCHYARD_TEST_UNSET_URL is not set" in err


def test_config_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere.yaml"
    assert main(["config", "validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"invalid config {path}:",
        "  <root>: cannot read: No such file or directory",
    ]


def _schema(directory: Path, name: str) -> dict[str, Any]:
    data = orjson.loads((directory / f"{name}.schema.json").read_bytes())
    assert isinstance(data, dict)
    return data


def test_schema_export_writes_json_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "schemas" / "nested"
    assert main(["schema", "export", str(out_dir)]) == 0
    assert capsys.readouterr().out == f"wrote 9 schemas to {out_dir}\n"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        f"{name}.schema.json"
        for name in (
            "InferenceRequest",
            "InferenceReply",
            "RoutingDecision",
            "DispatchJob",
            "TelemetryEvent",
            "Feedback",
            "SpendSettlement",
            "DeadLetter",
            "SwitchyardConfig",
        )
    )

    request = _schema(out_dir, "InferenceRequest")
    assert request["type"] == "object"
    assert request["title"] == "InferenceRequest"
    assert {"request_id", "tenant", "messages"} <= set(request["properties"])
    assert {"request_id", "tenant", "messages"} <= set(request["required"])
    assert request["additionalProperties"] is False
    assert request["properties"]["request_id"]["pattern"] == r"^[A-Za-z0-9._:@/-]{1,128}$"

    reply = _schema(out_dir, "InferenceReply")
    assert reply["type"] == "object"
    assert "request_id" in reply["required"]
    assert set(reply["properties"]["status"]["enum"]) == {"ok", "error", "rejected", "expired"}


def test_topics_list_names_every_topic(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["topic", "partitions", "cleanup", "key", "purpose"]
    listed = [line.split()[0] for line in out[1:]]
    expected = [spec.name for spec in TopicCatalogue().all()]
    assert listed == expected
    # requests (2 lanes), prepared, dispatch, 4 retry tiers, health, answers, replies,
    # settlements, telemetry, feedback, cache, deadletter, config, 2 of faust's
    assert len(expected) == 19
    assert all(name.startswith("switchyard") for name in expected)
    for line, spec in zip(out[1:], TopicCatalogue().all(), strict=True):
        assert line.split()[1:4] == [str(spec.partitions), spec.cleanup_policy, spec.key]


def test_topics_list_follows_namespace(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHYARD_NAMESPACE", "acme-prod")
    assert main(["topics", "list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert listed == [spec.name for spec in TopicCatalogue("acme-prod").all()]


def test_send_without_broker_fails_with_hint(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "hello", "--tenant", "acme"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "switchyard: no broker: set KAFKA_BOOTSTRAP, or run `switchyard up` first\n"
    assert list(clean_env.iterdir()) == []


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["no-such-command"])
    assert caught.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err
