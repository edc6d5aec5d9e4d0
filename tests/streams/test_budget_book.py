"""The router's budget book over a batch: staged snapshots read back, one sealed write
per tenant per batch, versions growing by one per write."""

from typing import Any

from processors.budget_record import BudgetSeal
from schemas.budget import BudgetSnapshot
from streams.workers.budget_table import BudgetBook

KEY = b"k" * 32
TOPIC = "switchyard.budget-changelog"


class _Table(dict[str, Any]):
    """The two things the book uses of faust's table: a mapping and its seal. Counts
    writes, each of which faust would send to the changelog."""

    def __init__(self) -> None:
        super().__init__()
        self.budget_seal = BudgetSeal(KEY, TOPIC)
        self.writes: list[str] = []

    def __setitem__(self, tenant: str, value: Any) -> None:
        self.writes.append(tenant)
        super().__setitem__(tenant, value)


def _snapshot(requests: int) -> BudgetSnapshot:
    return BudgetSnapshot(period="2026-11-30", spent_usd=0.01 * requests, requests=requests)


def test_a_batch_reads_its_own_staged_snapshots_and_writes_each_tenant_once() -> None:
    table = _Table()
    book = BudgetBook(table)  # type: ignore[arg-type]
    for n in range(1, 6):
        book.stage("acme", _snapshot(n))
        assert book.get("acme") == _snapshot(n)  # the next job of the batch sees this one
    book.stage("globex", _snapshot(1))
    assert table.writes == []  # nothing stored before the batch ends

    book.write_staged()

    assert sorted(table.writes) == ["acme", "globex"]
    opened = BudgetSeal(KEY, TOPIC).open("acme", table["acme"])
    assert opened is not None and opened.snapshot == _snapshot(5) and opened.version == 1
    assert book.get("acme") == _snapshot(5)


def test_each_batch_write_seals_the_next_version() -> None:
    table = _Table()
    book = BudgetBook(table)  # type: ignore[arg-type]
    for batch in range(3):
        book.stage("acme", _snapshot(batch))
        book.write_staged()
    opened = BudgetSeal(KEY, TOPIC).open("acme", table["acme"])
    assert opened is not None and opened.version == 3 and opened.snapshot == _snapshot(2)
    book.write_staged()  # an empty batch writes nothing
    assert table.writes == ["acme"] * 3
