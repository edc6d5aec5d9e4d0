"""Leases: a job's outputs go out only while its partition is held by this worker."""

import asyncio

import pytest

from streams.kafka.leases import Leases


async def _send_when_allowed(leases: Leases[str], partition: str, sent: list[str]) -> None:
    lease = leases.of(partition)
    if await lease.begin_send():
        sent.append(partition)
        lease.end_send()


@pytest.mark.asyncio
async def test_a_held_partition_sends_at_once() -> None:
    leases: Leases[str] = Leases()
    sent: list[str] = []
    await _send_when_allowed(leases, "p0", sent)
    assert sent == ["p0"]


@pytest.mark.asyncio
async def test_outputs_wait_out_a_rebalance_and_go_out_if_the_partition_comes_back() -> None:
    leases: Leases[str] = Leases()
    leases.of("kept")
    leases.of("moved")
    leases.suspend(["kept", "moved"])
    sent: list[str] = []
    waiting = [asyncio.create_task(_send_when_allowed(leases, p, sent)) for p in ("kept", "moved")]
    await asyncio.sleep(0.01)
    assert sent == []  # nothing goes out while the group decides
    assert leases.settle(["kept", "new"]) == ["moved"]
    await asyncio.gather(*waiting)
    assert sent == ["kept"]
    assert leases.of("moved").state == "held"  # a later assignment starts a fresh lease


@pytest.mark.asyncio
async def test_quiesce_waits_for_sends_begun_before_the_suspension() -> None:
    leases: Leases[str] = Leases()
    lease = leases.of("p0")
    assert await lease.begin_send()
    leases.suspend(["p0"])
    quiet = asyncio.create_task(leases.quiesce())
    await asyncio.sleep(0.01)
    assert not quiet.done()  # the send under way is not acknowledged yet
    lease.end_send()
    await asyncio.wait_for(quiet, timeout=1)


@pytest.mark.asyncio
async def test_shutting_down_releases_every_partition() -> None:
    leases: Leases[str] = Leases()
    first, second = leases.of("a"), leases.of("b")
    await leases.release_all()
    assert not await first.begin_send()
    assert not await second.begin_send()
