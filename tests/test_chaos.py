"""Every chaos scenario against the real pipeline: separate worker processes,
the embedded broker, simulated providers and embedded ClickHouse.

Each run publishes its scenario's jobs while its fault is applied, then accounts for
every one; the scenario's own checks (circuits opened and closed, calls within the
rate limit, rows exactly once, dead-letter reasons...) must hold. Here the scenarios
sent at 100/s get 1,500 jobs instead of the command's 2,000: sending still outlasts
every fault timeline (the last fault ends at 14 s), and the suite saves 5 s each.
kill-in-flight and handover send theirs faster and keep their numbers.
"""

from pathlib import Path

import pytest

from commands.chaos import SCENARIOS, run_chaos
from schemas.config_file import load_config
from streams.local.broker import EmbeddedBroker
from streams.local.environment import DEFAULT_CONFIG
from tests.helpers import stack_environment

TEST_JOBS = 1500


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_chaos_scenario(scenario: str, broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = stack_environment(broker, tmp_path, config_path=DEFAULT_CONFIG)
    spec = SCENARIOS[scenario]
    jobs = min(spec.jobs, TEST_JOBS) if spec.rate_per_s <= 100 else spec.jobs
    summary = run_chaos(env, load_config(DEFAULT_CONFIG), scenario, jobs)

    assert summary["sent"] == jobs
    assert summary["lost"] == 0, summary["statuses"]
    assert summary["duplicate_replies"] == 0
    assert summary["answered"] == jobs
    failed = [name for name, held in summary["checks"].items() if not held]
    assert failed == [], {k: summary[k] for k in ("statuses", "circuits", "events")}
    assert summary["ok"] is True
