"""``switchyard kafka``: a real Apache Kafka cluster on this machine, in one command.

``start`` unpacks the distribution (the shared 3.9.0 beside the project, ``--dist``,
``$SWITCHYARD_KAFKA_DIST`` or ``$KAFKA_HOME``), formats and starts 1 or 3 KRaft nodes
on free loopback ports, waits until every broker is in the cluster's metadata and
prints the ``KAFKA_BOOTSTRAP`` to export; the nodes run on after it returns.
``stop`` stops them (a controlled shutdown) and deletes their data; ``status`` says
which nodes run.
"""

from pathlib import Path
from typing import Annotated

import orjson
import typer

from commands.app import RUN, JsonFlag, new_app
from commands.console import say
from schemas.errors import BrokerError, StackError
from streams.local.environment import Environment
from streams.local.kafka_cluster import ADMIN_USER, KafkaCluster

app = new_app("A real Apache Kafka cluster on loopback (KRaft, 1 or 3 nodes).")

HomeOption = Annotated[
    Path | None,
    typer.Option("--dir", help="the cluster's folder (default: <state dir>/kafka)"),
]


def _home(given: Path | None) -> Path:
    return given if given is not None else Environment.from_env().state_dir / "kafka"


@app.command(rich_help_panel=RUN)
def start(
    nodes: Annotated[int, typer.Option(help="1 or 3 combined broker+controller nodes")] = 3,
    sasl: Annotated[
        bool, typer.Option("--sasl", help="also a SASL/SCRAM listener per node, with ACLs on")
    ] = False,
    dist: Annotated[
        Path | None, typer.Option(help="a Kafka 3.9 folder or .tgz (default: the shared one)")
    ] = None,
    home: HomeOption = None,
    as_json: JsonFlag = False,
) -> int:
    """Start a new cluster (its folder emptied first) and print its bootstrap."""
    folder = _home(home)
    try:
        running = KafkaCluster.attach(folder)
    except BrokerError:
        running = None
    if running is not None and any(running.node_alive(i) for i in running.node_ids):
        raise StackError(f"a cluster already runs in {folder}: `switchyard kafka stop` first")
    say(f"starting {nodes} Kafka node{'s' if nodes > 1 else ''} in {folder}")
    cluster = KafkaCluster.start(folder, nodes=nodes, sasl=sasl, dist=dist)
    layout = cluster.layout
    if as_json:
        print(orjson.dumps(_summary(cluster)).decode())
        return 0
    say(f"ready: {len(cluster.node_ids)} brokers, replication {min(3, nodes)}")
    print(f"export KAFKA_BOOTSTRAP={cluster.bootstrap}")
    if layout.sasl:
        say(f"SASL/SCRAM-SHA-256 listeners: {layout.sasl_bootstrap}")
        say(f"superuser {ADMIN_USER}; its password is in {cluster.state_file} (mode 0600)")
    return 0


@app.command(rich_help_panel=RUN)
def stop(
    home: HomeOption = None,
    keep_data: Annotated[bool, typer.Option("--keep-data", help="keep the logs' data")] = False,
) -> int:
    """Stop every node of the cluster in the folder and delete its data."""
    cluster = KafkaCluster.attach(_home(home))
    cluster.stop(remove_data=not keep_data)
    say(f"stopped {len(cluster.node_ids)} Kafka nodes")
    return 0


@app.command(rich_help_panel=RUN)
def status(home: HomeOption = None, as_json: JsonFlag = False) -> int:
    """Which nodes of the cluster in the folder run; exit 1 if none does."""
    cluster = KafkaCluster.attach(_home(home))
    if as_json:
        print(orjson.dumps(_summary(cluster)).decode())
    else:
        for node in _nodes(cluster):
            state = "running" if node["alive"] else "stopped"
            say(f"node {node['id']}: {state} (pid {node['pid']}, port {node['port']})")
        print(f"export KAFKA_BOOTSTRAP={cluster.bootstrap}")
    return 0 if any(cluster.node_alive(i) for i in cluster.node_ids) else 1


def _summary(cluster: KafkaCluster) -> dict[str, object]:
    layout = cluster.layout
    return {
        "bootstrap": cluster.bootstrap,
        "sasl_bootstrap": layout.sasl_bootstrap,
        "home": str(layout.home),
        "nodes": _nodes(cluster),
    }


def _nodes(cluster: KafkaCluster) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "pid": cluster.pids.get(i),
            "port": cluster.layout.nodes[i - 1].client,
            "alive": cluster.node_alive(i),
        }
        for i in cluster.node_ids
    ]
