from pathlib import Path

import pytest

from streams.bench import run_bench
from streams.broker import EmbeddedBroker
from streams.environment import Environment
from tests.helpers import SAMPLE_CONFIG, sample_config


@pytest.mark.slow
def test_bench_routes_and_answers_every_job(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = Environment(
        kafka_bootstrap=broker.bootstrap,
        clickhouse_url=f"chdb://{tmp_path / 'chdb'}",
        config_path=SAMPLE_CONFIG,
        state_dir=tmp_path,
        namespace="unused",
        replication_factor=1,
    )
    result = run_bench(env, sample_config(), 60)
    assert result["jobs"] == 60
    assert result["replies"] == 60
    assert result["router_jobs_per_s"] > 0
    assert result["provider_jobs_per_s"] > 0
