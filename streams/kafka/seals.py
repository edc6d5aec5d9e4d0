"""The cluster key from the environment, and the check every internal reader makes.

Writers seal through ``streams.outputs.records`` (and the health board); readers
hand each record to a ``SealGate`` first. A record that fails (no seal, a wrong
one, a seal for another topic or key) is dropped: not processed, not
dead-lettered (a dead letter is a record others read: forging one per second
would make one per second), only counted in ``dropped`` per topic and logged: at
the first drop on each topic, else at most once per ``LOG_EVERY_S``, never per
record. Its offset commits like any other.
"""

import logging
import os
import time
from collections import Counter

from processors.seal import CLUSTER_KEY_ENV, MIN_KEY_CHARS, AnyHeaders, is_sealed
from schemas.errors import ClusterKeyMissing

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0


def cluster_key_from_env() -> bytes:
    """The cluster key (``SWITCHYARD_CLUSTER_KEY``); ClusterKeyMissing without a usable one."""
    key = os.environ.get(CLUSTER_KEY_ENV, "")
    if len(key) < MIN_KEY_CHARS:
        raise ClusterKeyMissing(
            f"set {CLUSTER_KEY_ENV} (at least {MIN_KEY_CHARS} characters, the same for every "
            "worker of the deployment): workers seal internal records with it and drop "
            "records without its seal; `switchyard up` makes one per stack"
        )
    return key.encode()


class Refusals:
    """Records a worker refused, counted per topic and logged: at the first refusal on
    each topic, else at most once per ``LOG_EVERY_S``, never per record."""

    def __init__(self, role: str, what: str) -> None:
        self.role = role
        self.what = what
        self.dropped: Counter[str] = Counter()
        self._logged_at = -LOG_EVERY_S
        self._logged_total = 0

    @property
    def total_dropped(self) -> int:
        return self.dropped.total()

    def refuse(self, topic: str) -> None:
        """Count one refused record of ``topic``."""
        first_on_topic = topic not in self.dropped
        self.dropped[topic] += 1
        now = time.monotonic()
        if now - self._logged_at < LOG_EVERY_S and not first_on_topic:
            return
        total = self.total_dropped
        log.warning(
            "%s dropped %d record(s) %s since the last report (%d in all: %s)",
            self.role,
            total - self._logged_total,
            self.what,
            total,
            ", ".join(f"{t} {n}" for t, n in sorted(self.dropped.items())),
        )
        self._logged_at, self._logged_total = now, total


class SealGate(Refusals):
    """Checks internal records' seals for one worker; counts what it drops."""

    def __init__(self, cluster_key: bytes, role: str) -> None:
        super().__init__(role, "without a valid seal")
        self.cluster_key = cluster_key

    def admits(
        self, topic: str, key: bytes | None, value: bytes | None, headers: AnyHeaders
    ) -> bool:
        """True when the record is sealed with the cluster key; else count it and say no."""
        if is_sealed(self.cluster_key, topic, key, value, headers):
            return True
        self.refuse(topic)
        return False
