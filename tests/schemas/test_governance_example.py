"""The README's worked governance example is a valid config, and means what it says."""

import re
from pathlib import Path
from typing import Any

import yaml

from schemas.config_file import load_config
from tests.helpers import SAMPLE_CONFIG

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> dict[str, Any]:
    text = README.read_text()
    block = re.search(r"<!-- governance-example -->\n```yaml\n(.*?)```", text, re.S)
    assert block is not None, "the README lost its governance example"
    loaded: dict[str, Any] = yaml.safe_load(block.group(1))
    return loaded


def test_the_readme_governance_example_is_a_valid_config(tmp_path: Path) -> None:
    raw: dict[str, Any] = yaml.safe_load(SAMPLE_CONFIG.read_text())
    example = _example()
    raw["tenants"]["acme"] |= example["tenants"]["acme"]
    raw["redaction"] = example["redaction"]
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    acme = config.tenants["acme"]
    assert acme.budgets.for_job("research", "indexer").keys() == {"team:research"}
    research = acme.budgets.teams["research"]
    assert (research.kind, research.alert_at * research.usd) == ("soft", 16)
    assert acme.rate_limits.on_limit == "queue" and acme.rate_limits.max_queue_s == 30
    assert acme.rate_limits.apps["indexer"].tokens_per_minute == 400_000
    assert config.redaction.patterns["employee_id"] == r"\bEMP-\d{6}\b"
