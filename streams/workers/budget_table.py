"""The router's budget table: each tenant's sealed ``BudgetSnapshot`` in a faust table.

faust keeps the table in the budget changelog topic and restores it from there on
recovery. It gives no hook for Kafka headers, so each stored value carries its own
seal (``processors.budget_record``), and ``SealedBudgetTable`` filters what recovery
applies: a record that is not a sealed value for its key, or is older than what the
table holds, is skipped and counted on the router's ``SealGate``, the way every other
internal reader drops a record without its seal. The tenant keeps its last good
snapshot.

The filter also keeps recovery itself alive. faust applies a batch of changelog
records in one call and does not clear the batch when that call raises: one record
with an unhashable key (a JSON object) or a tombstone of an unknown key fails every
later batch too, recovery never ends, and the router routes nothing while every
process looks alive (the post-recovery stall seen with foreign records in the
changelog). Skipping such records before they reach the store avoids that. A record
whose key or value is not JSON at all never even reaches the batch by default: faust
raises its decode error into the recovery loop, the record's offset is never counted,
and when it is the last record of a partition recovery waits for it forever.
``TolerantJson`` decodes such a record to ``UNREADABLE`` instead, for the filter to skip.
"""

from collections.abc import Iterable, Iterator
from typing import Any

import faust
from faust.exceptions import KeyDecodeError, ValueDecodeError
from faust.tables.table import Table
from faust.types import AppT, EventT
from faust.types.tuples import Message

from processors.budget_record import BudgetSeal, SealedBudget
from schemas.budget import BudgetSnapshot
from schemas.errors import InternalError
from streams.kafka.seals import SealGate
from streams.topics import ROUTING_PARTITIONS, TopicCatalogue, home_partition


class _Unreadable:
    """What a changelog key or value that is not JSON decodes to: never a tenant or a value."""

    def __repr__(self) -> str:
        return "UNREADABLE"


UNREADABLE = _Unreadable()


class TolerantJson(faust.Schema[Any, Any]):
    """JSON keys and values; what does not decode becomes ``UNREADABLE``, not an error."""

    def __init__(self) -> None:
        super().__init__(key_serializer="json", value_serializer="json")

    def loads_key(self, app: AppT, message: Message, **kwargs: Any) -> Any:
        try:
            return super().loads_key(app, message, **kwargs)
        except KeyDecodeError:
            return UNREADABLE

    def loads_value(self, app: AppT, message: Message, **kwargs: Any) -> Any:
        try:
            return super().loads_value(app, message, **kwargs)
        except ValueDecodeError:
            return UNREADABLE


class SealedBudgetTable(Table[str, Any]):
    """A faust table whose recovery applies only sealed, newer values."""

    budget_seal: BudgetSeal
    seal_gate: SealGate

    def partition_for_key(self, key: Any) -> int:
        """The tenant's home partition (``streams.topics.home_partition``), where its
        jobs and settlements arrive; faust's own choice would hash the JSON-encoded key."""
        return home_partition(str(key), self.partitions or ROUTING_PARTITIONS)

    def apply_changelog_batch(self, batch: Iterable[EventT[Any]]) -> None:
        super().apply_changelog_batch(list(self._admitted(batch)))

    def _admitted(self, batch: Iterable[EventT[Any]]) -> Iterator[EventT[Any]]:
        held: dict[str, Any] = {}
        for event in batch:
            key = event.key
            if isinstance(key, str) and event.message.value is not None:
                current = held[key] if key in held else self.data.get(key)
                if self.budget_seal.admits(key, event.value, current):
                    held[key] = event.value
                    yield event
                    continue
            self.seal_gate.refuse(self.budget_seal.topic)


class BudgetBook:
    """Reads and writes tenants' snapshots in the sealed table.

    A value's seal is checked once, when the book first meets that value (after
    recovery); a value the book wrote itself is known already. The router routes a
    batch of jobs at a time: each job's snapshot is staged (``stage``) and read back
    by the next job, and ``write_staged`` seals and stores each tenant's last one
    once per batch, one HMAC and one changelog record per tenant instead of per job.
    """

    def __init__(self, table: SealedBudgetTable) -> None:
        self.table = table
        self.seal = table.budget_seal
        self._opened: dict[str, tuple[Any, SealedBudget]] = {}  # tenant -> (value, opened)
        self._staged: dict[str, BudgetSnapshot] = {}

    def get(self, tenant: str) -> BudgetSnapshot | None:
        staged = self._staged.get(tenant)
        if staged is not None:
            return staged
        opened = self._open(tenant)
        return opened.snapshot if opened is not None else None

    def stage(self, tenant: str, snapshot: BudgetSnapshot) -> None:
        """Hold ``snapshot`` as the tenant's until ``write_staged``; ``get`` reads it."""
        self._staged[tenant] = snapshot

    def write_staged(self) -> None:
        """Store every staged snapshot in the table (its changelog), once per tenant."""
        for tenant, snapshot in self._staged.items():
            self.put(tenant, snapshot)
        self._staged.clear()

    def put(self, tenant: str, snapshot: BudgetSnapshot) -> None:
        held = self._open(tenant)
        version = held.version + 1 if held is not None else 1
        stored = self.seal.wrap(tenant, snapshot, version)
        self.table[tenant] = stored
        self._opened[tenant] = (stored, SealedBudget(version, snapshot))

    def _open(self, tenant: str) -> SealedBudget | None:
        stored = self.table.get(tenant)
        if stored is None:
            return None
        known = self._opened.get(tenant)
        if known is not None and known[0] is stored:
            return known[1]
        opened = self.seal.open(tenant, stored)
        if opened is None:
            # Recovery admits only sealed values and the router writes only sealed
            # ones: starting this tenant from zero instead would lift its budget.
            raise InternalError(f"the budget table's value for {tenant!r} fails its seal")
        self._opened[tenant] = (stored, opened)
        return opened

    def snapshots(self) -> dict[str, dict[str, Any]]:
        """Every tenant's snapshot as JSON, for the ``/budget/`` page."""
        out: dict[str, dict[str, Any]] = {}
        for tenant, stored in self.table.items():
            opened = self.seal.open(tenant, stored)
            if opened is not None:
                out[tenant] = opened.snapshot.model_dump()
        return out


def budget_book(app: faust.App, catalogue: TopicCatalogue, gate: SealGate) -> BudgetBook:
    """The ``budget`` table, kept in the budget changelog topic on the partition of the
    tenant's key, its values sealed with ``gate``'s cluster key.

    The changelog topic is declared with ``acks=False``, as faust's own changelog topics
    are: with acks on, faust's livelock check treats the changelog like an agent's
    input, finds its end past a position no stream moves, and after
    ``stream_processing_timeout`` (300 s) logs "Stream has not started processing"
    for every changelog partition on each check, about 3 times a second.
    """
    json_schema = TolerantJson()
    topic = catalogue.budget_changelog.name
    table = SealedBudgetTable(
        app,
        name="budget",
        default=None,
        beacon=app.tables.beacon,
        # Stored on the tenant's home partition (``partition_for_key``), not the one the
        # event came on: it must have one snapshot, on the partition its jobs are routed from.
        partitions=ROUTING_PARTITIONS,
        schema=json_schema,
        changelog_topic=app.topic(topic, schema=json_schema, acks=False),
    )
    table.budget_seal = BudgetSeal(gate.cluster_key, topic)
    table.seal_gate = gate
    app.tables.add(table)
    return BudgetBook(table)
