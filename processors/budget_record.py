"""The budget table's stored value: a tenant's snapshot sealed with the cluster key.

faust writes the budget changelog and reads it back on recovery itself, with no
hook for Kafka headers, so the seal the other internal topics carry in ``sy-seal``
(``processors.seal``) travels inside the value instead::

    {"version": 7, "snapshot": {...BudgetSnapshot...}, "seal": "<hex>"}

The seal is the s1 seal of the changelog topic, the tenant as key and the
canonical JSON (sorted keys) of ``{"version": ..., "snapshot": ...}``. ``version``
grows by one with every write of a tenant's snapshot, so a sealed value copied back
to the changelog later (a replay, which rolls spend back) is older than the one it
would replace and is refused like a forgery.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from processors.authenticate import digests_match
from processors.seal import seal
from schemas.budget import BudgetSnapshot


@dataclass(frozen=True)
class SealedBudget:
    version: int
    snapshot: BudgetSnapshot


def _canonical(version: int, snapshot: Mapping[str, Any]) -> bytes:
    return orjson.dumps({"version": version, "snapshot": snapshot}, option=orjson.OPT_SORT_KEYS)


class BudgetSeal:
    """Seals and opens the stored values of one budget changelog topic."""

    def __init__(self, cluster_key: bytes, topic: str) -> None:
        self.cluster_key = cluster_key
        self.topic = topic

    def wrap(self, tenant: str, snapshot: BudgetSnapshot, version: int) -> dict[str, Any]:
        """The value to store for ``tenant``: ``version`` is the previous one plus one."""
        body = snapshot.model_dump()
        mac = seal(self.cluster_key, self.topic, tenant.encode(), _canonical(version, body))
        return {"version": version, "snapshot": body, "seal": mac}

    def open(self, tenant: Any, value: Any) -> SealedBudget | None:
        """The snapshot in a stored value, or None when the value is not one this
        cluster key sealed for this tenant (any shape, any key, never raises)."""
        if not isinstance(tenant, str) or not isinstance(value, Mapping):
            return None
        version, body, mac = value.get("version"), value.get("snapshot"), value.get("seal")
        if type(version) is not int or not isinstance(body, Mapping) or not isinstance(mac, str):
            return None
        try:
            canonical = _canonical(version, body)
            expected = seal(self.cluster_key, self.topic, tenant.encode(), canonical)
            if not digests_match(expected, mac):
                return None
            return SealedBudget(version, BudgetSnapshot.model_validate(body))
        except (TypeError, ValueError, orjson.JSONEncodeError):
            return None

    def admits(self, tenant: Any, value: Any, held: Any) -> bool:
        """Should recovery apply ``value`` over ``held`` (the value the table has now)?
        Only a sealed value newer than the held one: no forgery, no replay, no tombstone."""
        new = self.open(tenant, value)
        if new is None:
            return False
        old = self.open(tenant, held)
        return old is None or new.version > old.version
