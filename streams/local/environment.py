"""Where things are: the broker, the telemetry database, the config file, the state folder.

Read from environment variables once, at start-up; everything else comes from
the YAML config (``schemas.config.SwitchyardConfig``).
"""

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "switchyard.yaml"


@dataclass(frozen=True)
class Environment:
    kafka_bootstrap: str | None
    clickhouse_url: str
    config_path: Path
    state_dir: Path
    namespace: str
    # None: chosen by the cluster's size (3 where it has 3 brokers; streams/kafka/admin.py).
    replication_factor: int | None

    @classmethod
    def from_env(cls) -> "Environment":
        state_dir = Path(os.environ.get("SWITCHYARD_HOME", ".switchyard")).resolve()
        return cls(
            kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP") or None,
            clickhouse_url=os.environ.get("CLICKHOUSE_URL") or f"chdb://{state_dir / 'chdb'}",
            config_path=Path(os.environ.get("SWITCHYARD_CONFIG", str(DEFAULT_CONFIG))),
            state_dir=state_dir,
            namespace=os.environ.get("SWITCHYARD_NAMESPACE", "switchyard"),
            replication_factor=_optional_int(os.environ.get("SWITCHYARD_REPLICATION_FACTOR")),
        )


def _optional_int(value: str | None) -> int | None:
    return int(value) if value else None
