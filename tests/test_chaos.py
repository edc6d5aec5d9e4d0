"""Every chaos scenario against the real pipeline: separate worker processes,
the embedded broker, simulated providers and embedded ClickHouse.

Each run publishes its scenario's jobs while its fault is applied, then accounts for
every one; the scenario's own checks (circuits opened and closed, calls within the
rate limit, rows exactly once, dead-letter reasons...) must hold. Here the scenarios
in ``SHORTENED`` get 1,500 jobs instead of the command's 2,000 (sent at 100/s, so
sending still outlasts their faults, which end by 14 s), saving 5 s each;
provider-outage keeps 2,000, because its circuit closes only when jobs still come
after the outage and the breaker's open time (a CI run with 1,500 ended it open).
"""

import os
from pathlib import Path

import pytest

from commands.chaos import SCENARIOS, run_chaos
from schemas.config_file import load_config
from streams.local.environment import DEFAULT_CONFIG
from tests.helpers import Engine, stack_environment

SHORTENED = ("rate-limit-storm", "worker-kill", "telemetry-down", "slow-tail", "poison")
SHORTENED_JOBS = 1500
# Scenarios whose checks assume the pipeline keeps up with their 100 jobs/s: on the 3-node
# cluster sharing two cores with every worker it answers about 95 a second (the brokers
# take 0.85 of a core), so slow-tail's 4 s deadlines expired for 1,055-1,369 of 1,500
# jobs, and the rate-limit storm parked no job for a later retry (its "jobs were retried
# later" check failed in both runs; the cause is not yet traced).
_SATURATED = (
    "not yet on the 3-node cluster: it answers about 95 jobs/s on these two cores, "
    "below this scenario's 100/s (README, Chaos)"
)
NOT_YET_ON_KAFKA = {"slow-tail": _SATURATED, "rate-limit-storm": _SATURATED}
# The rest pass on the cluster but take 30-113 s each there; within the suite's 35 minutes
# three run on it (a worker's crash, a handover mid-call, a shared provider limit), the
# others when SWITCHYARD_TEST_KAFKA_CHAOS=all.
KAFKA_IN_SUITE = ("worker-kill", "handover", "provider-limit")
if os.environ.get("SWITCHYARD_TEST_KAFKA_CHAOS") != "all":
    for _name in set(SCENARIOS) - set(KAFKA_IN_SUITE) - set(NOT_YET_ON_KAFKA):
        NOT_YET_ON_KAFKA[_name] = (
            "on Kafka outside the suite's time budget: SWITCHYARD_TEST_KAFKA_CHAOS=all runs it"
        )


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_chaos_scenario(
    scenario: str, engine: Engine, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["engine"] == "kafka" and scenario in NOT_YET_ON_KAFKA:
        pytest.skip(NOT_YET_ON_KAFKA[scenario])
    env = stack_environment(engine, tmp_path, config_path=DEFAULT_CONFIG)
    jobs = SHORTENED_JOBS if scenario in SHORTENED else SCENARIOS[scenario].jobs
    summary = run_chaos(env, load_config(DEFAULT_CONFIG), scenario, jobs)

    assert summary["sent"] == jobs
    assert summary["lost"] == 0, summary["statuses"]
    assert summary["duplicate_replies"] == 0
    assert summary["answered"] == jobs
    failed = [name for name, held in summary["checks"].items() if not held]
    assert failed == [], {k: summary[k] for k in ("statuses", "circuits", "events")}
    assert summary["ok"] is True
