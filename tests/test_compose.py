"""docker-compose.yml describes the cluster the tests run: same nodes, settings and version.

Images cannot be pulled on our machines, so compose is never started here; this test
holds its Kafka services to what ``switchyard kafka start --nodes 3`` runs.
"""

from pathlib import Path
from typing import Any

import yaml

from streams.local.kafka_cluster import broker_settings
from streams.local.kafka_dist import KAFKA_VERSION

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def kafka_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return {name: spec for name, spec in services.items() if name.startswith("kafka")}


def as_property(variable: str) -> str:
    """``KAFKA_MIN_INSYNC_REPLICAS`` -> ``min.insync.replicas`` (the apache/kafka image's rule)."""
    return variable.removeprefix("KAFKA_").lower().replace("_", ".")


def test_compose_runs_three_kraft_nodes_of_the_tested_version() -> None:
    services = kafka_services()
    assert sorted(services) == ["kafka-1", "kafka-2", "kafka-3"]
    for name, spec in services.items():
        assert spec["image"] == f"apache/kafka:{KAFKA_VERSION}"
        env = spec["environment"]
        assert env["KAFKA_NODE_ID"] == int(name.rsplit("-", 1)[1])
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert [v.split("@")[0] for v in voters] == ["1", "2", "3"]


def test_compose_and_the_cluster_script_share_every_broker_setting() -> None:
    wanted = broker_settings(3)
    for name, spec in kafka_services().items():
        env = {as_property(k): str(v) for k, v in spec["environment"].items()}
        differing = {k: (env.get(k), v) for k, v in wanted.items() if env.get(k) != v}
        assert differing == {}, f"{name}: (compose, script) {differing}"
    assert wanted["default.replication.factor"] == "3"
    assert wanted["min.insync.replicas"] == "2"
    assert wanted["unclean.leader.election.enable"] == "false"


def test_the_workers_in_compose_reach_every_broker() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    bootstrap = compose["x-switchyard"]["environment"]["KAFKA_BOOTSTRAP"]
    assert sorted(bootstrap.split(",")) == [f"{name}:9092" for name in sorted(kafka_services())]
