from pathlib import Path

import pytest

from commands.bench import run_bench
from streams.local.broker import EmbeddedBroker
from tests.helpers import sample_config, stack_environment


@pytest.mark.slow
def test_bench_routes_and_answers_every_job(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = stack_environment(broker, tmp_path)
    result = run_bench(env, sample_config(), 60)
    assert result["jobs"] == 60
    assert result["replies"] == 60
    assert result["router_jobs_per_s"] > 0
    assert result["provider_jobs_per_s"] > 0
