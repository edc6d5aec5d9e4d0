"""A real Apache Kafka cluster on loopback: 1 or 3 KRaft nodes from a Kafka distribution.

The engine Switchyard's users run, started the way the shared recipe does
(``../shared/engines/kafka/reference``), with free loopback ports so that several
clusters (a test session's, an operator's) never collide. Every node is a combined
broker and controller; with ``sasl`` each also listens for SASL/SCRAM-SHA-256 and
enforces ACLs (the StandardAuthorizer, deny when no ACL is found).

The broker settings every Switchyard cluster shares are ``BROKER_SETTINGS``;
``docker-compose.yml`` describes the same cluster and a test holds the two together.
A cluster writes ``cluster.json`` into its folder (pids, ports, the bootstrap), so
``switchyard kafka stop`` in another process can stop what ``start`` left running.
"""

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from schemas.errors import BrokerError
from streams.local.broker import free_port, pid_alive, wait_for_port
from streams.local.kafka_dist import find_distribution
from streams.local.private_files import write_private

HEAP_OPTS = "-Xmx512m -Xms256m"
# The superuser of a SASL cluster: Switchyard's own workers and its admin commands.
ADMIN_USER = "switchyard-admin"


def broker_settings(nodes: int) -> dict[str, str]:
    """The settings every node of an ``nodes``-node Switchyard cluster runs with.

    Replication 3 with two in sync on 3 nodes, so an acknowledged (``acks=all``)
    record survives the loss of any one broker; 1 on a single node.
    """
    replicas, min_isr = (3, 2) if nodes >= 3 else (1, 1)
    return {
        "num.partitions": "3",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replicas),
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "transaction.state.log.num.partitions": "6",
        "unclean.leader.election.enable": "false",
        # Switchyard creates every topic from its catalogue, never by naming it.
        "auto.create.topics.enable": "false",
        "message.max.bytes": "8388608",
        "group.initial.rebalance.delay.ms": "0",
    }


@dataclass(frozen=True)
class NodePorts:
    client: int
    controller: int
    sasl: int | None


@dataclass(frozen=True)
class ClusterLayout:
    """What a cluster is: its nodes' ports, whether SASL is on, where its files live."""

    home: Path
    nodes: list[NodePorts]
    cluster_id: str
    sasl: bool = False
    admin_password: str = field(default="", repr=False)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.client}" for n in self.nodes)

    @property
    def sasl_bootstrap(self) -> str | None:
        if not self.sasl:
            return None
        return ",".join(f"127.0.0.1:{n.sasl}" for n in self.nodes)

    def node_properties(self, node_id: int) -> dict[str, str]:
        ports = self.nodes[node_id - 1]
        voters = ",".join(f"{i}@127.0.0.1:{n.controller}" for i, n in enumerate(self.nodes, 1))
        listeners = [f"PLAINTEXT://127.0.0.1:{ports.client}"]
        protocols = ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"]
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "controller.quorum.voters": voters,
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(self.home / f"data-{node_id}"),
        }
        if self.sasl:
            listeners.append(f"SASL_PLAINTEXT://127.0.0.1:{ports.sasl}")
            protocols.append("SASL_PLAINTEXT:SASL_PLAINTEXT")
            props.update(_sasl_properties())
        props["advertised.listeners"] = ",".join(listeners)
        props["listeners"] = ",".join([*listeners, f"CONTROLLER://127.0.0.1:{ports.controller}"])
        props["listener.security.protocol.map"] = ",".join(protocols)
        props.update(broker_settings(len(self.nodes)))
        return props

    def to_json(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "nodes": [[n.client, n.controller, n.sasl] for n in self.nodes],
            "cluster_id": self.cluster_id,
            "sasl": self.sasl,
            "admin_password": self.admin_password,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ClusterLayout":
        return cls(
            home=Path(data["home"]),
            nodes=[NodePorts(*ports) for ports in data["nodes"]],
            cluster_id=str(data["cluster_id"]),
            sasl=bool(data["sasl"]),
            admin_password=str(data["admin_password"]),
        )


def _sasl_properties() -> dict[str, str]:
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return {
        "sasl.enabled.mechanisms": "SCRAM-SHA-256",
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": scram,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # The plaintext listener stays for brokers and controllers among themselves, on
        # loopback; clients that must be told apart use the SASL listener.
        "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }


def new_layout(home: Path, nodes: int, sasl: bool = False) -> ClusterLayout:
    if nodes not in (1, 3):
        raise BrokerError(f"a local cluster has 1 or 3 nodes, not {nodes}")
    ports = [
        NodePorts(free_port(), free_port(), free_port() if sasl else None) for _ in range(nodes)
    ]
    # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding; one
    # starting with '-' would be read as an option by kafka-storage.
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    password = base64.urlsafe_b64encode(os.urandom(18)).decode() if sasl else ""
    return ClusterLayout(home, ports, cluster_id, sasl, password)


@dataclass
class KafkaCluster:
    """A running local cluster: its layout, its distribution, each node's process id."""

    layout: ClusterLayout
    dist: Path
    pids: dict[int, int] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.layout.bootstrap

    @property
    def state_file(self) -> Path:
        return self.layout.home / "cluster.json"

    @classmethod
    def start(
        cls,
        home: Path,
        nodes: int = 3,
        sasl: bool = False,
        dist: Path | None = None,
        timeout_s: float = 90,
    ) -> "KafkaCluster":
        """Format and start a new cluster in ``home`` (emptied first); wait until ready."""
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        cluster = cls(new_layout(home, nodes, sasl), find_distribution(dist))
        cluster._format()
        for node_id in cluster.node_ids:
            cluster.start_node(node_id)
        try:
            cluster.wait_ready(timeout_s)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @classmethod
    def attach(cls, home: Path) -> "KafkaCluster":
        """The cluster another process started in ``home``."""
        try:
            state = orjson.loads((home / "cluster.json").read_bytes())
        except FileNotFoundError:
            raise BrokerError(f"no local Kafka cluster in {home}") from None
        pids = {int(k): int(v) for k, v in state["pids"].items()}
        return cls(ClusterLayout.from_json(state["layout"]), Path(state["dist"]), pids)

    @property
    def node_ids(self) -> list[int]:
        return list(range(1, len(self.layout.nodes) + 1))

    def _format(self) -> None:
        for node_id in self.node_ids:
            lines = [f"{k}={v}" for k, v in self.layout.node_properties(node_id).items()]
            self._config_path(node_id).write_text("\n".join(lines) + "\n")
        # Every node's storage is formatted at once: each format is a JVM start (2-3 s).
        formats = [
            self._tool("kafka-storage.sh", *self._format_args(node_id)) for node_id in self.node_ids
        ]
        for node_id, process in zip(self.node_ids, formats, strict=True):
            if process.wait(timeout=120) != 0:
                raise BrokerError(
                    f"formatting node {node_id} failed; see {self.layout.home}/format.log"
                )

    def _format_args(self, node_id: int) -> list[str]:
        args = ["format", "-t", self.layout.cluster_id, "-c", str(self._config_path(node_id))]
        if self.layout.sasl:
            credential = f"name={ADMIN_USER},password={self.layout.admin_password}"
            args += ["--add-scram", f"SCRAM-SHA-256=[{credential}]"]
        return args

    def _tool(self, script: str, *args: str) -> subprocess.Popen[bytes]:
        tools_log = self.dist / "config" / "log4j2-tools.properties"
        env = dict(os.environ, KAFKA_LOG4J_OPTS=f"-Dlog4j2.configurationFile=file:{tools_log}")
        with (self.layout.home / "format.log").open("ab") as log:  # the child keeps its copy
            return subprocess.Popen(  # noqa: S603 - the distribution's own scripts
                [str(self.dist / "bin" / script), *args], stdout=log, stderr=log, env=env
            )

    def _config_path(self, node_id: int) -> Path:
        return self.layout.home / f"node-{node_id}.properties"

    def node_log(self, node_id: int) -> Path:
        return self.layout.home / f"node-{node_id}.log"

    def start_node(self, node_id: int) -> None:
        """Start one node's JVM (again, after a stop or a kill: its data is kept)."""
        server_log = self.dist / "config" / "log4j2.properties"
        env = dict(
            os.environ,
            KAFKA_HEAP_OPTS=os.environ.get("KAFKA_HEAP_OPTS", HEAP_OPTS),
            KAFKA_LOG4J_OPTS=f"-Dlog4j2.configurationFile=file:{server_log}",
            LOG_DIR=str(self.layout.home / "logs"),
        )
        with self.node_log(node_id).open("ab") as log:  # the child keeps its copy
            process = subprocess.Popen(  # noqa: S603 - the distribution's own script
                [str(self.dist / "bin" / "kafka-server-start.sh"), str(self._config_path(node_id))],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives `switchyard kafka start`
            )
        self.pids[node_id] = process.pid
        self._write_state()

    def stop_node(self, node_id: int, kill: bool = False, timeout_s: float = 60) -> None:
        """SIGTERM (a controlled shutdown: leaders move first) or SIGKILL one node."""
        pid = self.pids.get(node_id)
        if pid is None or not pid_alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        _wait_gone(pid, timeout_s)

    def node_alive(self, node_id: int) -> bool:
        pid = self.pids.get(node_id)
        return pid is not None and pid_alive(pid)

    def wait_ready(self, timeout_s: float = 90) -> None:
        """Wait until every live node listens and the cluster's metadata lists them all."""
        deadline = time.monotonic() + timeout_s
        for node_id in self.node_ids:
            if not self.node_alive(node_id):
                continue
            port = self.layout.nodes[node_id - 1].client
            self._wait_listening(node_id, port, deadline)
        live = {i for i in self.node_ids if self.node_alive(i)}
        asyncio.run(_wait_brokers(self.bootstrap, live, deadline))

    def _wait_listening(self, node_id: int, port: int, deadline: float) -> None:
        while True:
            if not self.node_alive(node_id):
                tail = self.node_log(node_id).read_text(errors="replace").splitlines()[-8:]
                raise BrokerError(f"Kafka node {node_id} exited:\n  " + "\n  ".join(tail))
            try:
                wait_for_port("127.0.0.1", port, timeout_s=0.5)
                return
            except BrokerError:
                if time.monotonic() > deadline:
                    raise BrokerError(f"Kafka node {node_id} did not listen on {port}") from None

    def stop(self, remove_data: bool = True) -> None:
        """Stop every node (together: their shutdowns overlap), then delete the data."""
        for node_id in self.node_ids:
            pid = self.pids.get(node_id)
            if pid is not None and pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        for pid in self.pids.values():
            _wait_gone(pid, 30)
        if remove_data:
            shutil.rmtree(self.layout.home, ignore_errors=True)

    def _write_state(self) -> None:
        pids = {str(node_id): pid for node_id, pid in self.pids.items()}
        state = {"layout": self.layout.to_json(), "dist": str(self.dist), "pids": pids}
        # 0600: it holds the admin user's password on a SASL cluster.
        write_private(self.state_file, orjson.dumps(state))


def _wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            # Reap it if it is our child, so it does not linger as a zombie.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.1)


async def _wait_brokers(bootstrap: str, node_ids: set[int], deadline: float) -> None:
    """Until the cluster's metadata names every node in ``node_ids`` and has a controller."""
    from aiokafka.admin import AIOKafkaAdminClient

    seen: set[int] = set()
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            described = await admin.describe_cluster()
            seen = {int(b["node_id"]) for b in described["brokers"]}
            if node_ids <= seen and described.get("controller_id", -1) != -1:
                return
        except Exception:  # noqa: S110 - not up yet: any failure means try again
            pass
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
    raise BrokerError(f"Kafka brokers {sorted(node_ids)} not all up (saw {sorted(seen)})")
