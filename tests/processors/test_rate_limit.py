"""GCRA cells for requests and tokens per minute: bursts, rates, exact waits, settlement."""

import math

import pytest

from processors.rate_limit import Limit, admit, forget_idle, settle

RPM = Limit("tenant", "requests", 60)  # one a second
TPM = Limit("team:search", "tokens", 6000)  # 100 a second


def test_an_idle_scope_spends_a_minute_at_once_then_waits_exactly_one_interval() -> None:
    tat: dict[str, float] = {}
    for _ in range(60):
        admission = admit(tat, [RPM], {"requests": 1}, now=0.0)
        assert admission.refused is None
        tat = admission.tat
    refused = admit(tat, [RPM], {"requests": 1}, now=0.0).refused
    assert refused is not None and refused.limit == RPM
    assert refused.retry_after_s == pytest.approx(1.0)
    assert admit(tat, [RPM], {"requests": 1}, now=1.0).refused is None


def test_a_long_stretch_admits_one_burst_then_exactly_the_rate() -> None:
    tat: dict[str, float] = {}
    admitted = 0
    for tick in range(10 * 60 * 10):  # ten requests a second for ten minutes
        admission = admit(tat, [RPM], {"requests": 1}, now=tick / 10)
        if admission.refused is None:
            admitted += 1
            tat = admission.tat
    # A minute's 60 at once, then one a second: 599 more by the last tick at 599.9 s.
    assert admitted == 60 + 599


def test_the_wait_for_tokens_is_exact_and_names_the_limit() -> None:
    tat = admit({}, [TPM], {"tokens": 6000}, now=100.0).tat
    refused = admit(tat, [RPM, TPM], {"requests": 1, "tokens": 250}, now=100.0).refused
    assert refused is not None and refused.limit == TPM
    assert refused.retry_after_s == pytest.approx(2.5)  # 250 tokens at 100 a second


def test_a_refusal_charges_no_limit() -> None:
    full = admit({}, [TPM], {"tokens": 6000}, now=0.0).tat
    admission = admit(full, [RPM, TPM], {"requests": 1, "tokens": 10}, now=0.0)
    assert admission.refused is not None and admission.tat == full
    assert RPM.key not in admission.tat


def test_a_request_bigger_than_a_minute_never_fits() -> None:
    refused = admit({}, [TPM], {"tokens": 6001}, now=0.0).refused
    assert refused is not None and math.isinf(refused.retry_after_s)


def test_settlement_gives_back_unused_tokens_but_never_into_the_past() -> None:
    tat = admit({}, [TPM], {"tokens": 1000}, now=0.0).tat  # 10 s of the rate
    back = settle(tat, [TPM], {"tokens": 1000}, {"tokens": 400}, now=0.0)
    assert back[TPM.key] == pytest.approx(4.0)
    more = settle(tat, [TPM], {"tokens": 1000}, {"tokens": 1500}, now=0.0)
    assert more[TPM.key] == pytest.approx(15.0)
    late = settle(tat, [TPM], {"tokens": 1000}, {"tokens": 0}, now=8.0)
    assert late[TPM.key] == 8.0


def test_idle_cells_are_forgotten_without_changing_a_decision() -> None:
    tat = admit({}, [RPM, TPM], {"requests": 1, "tokens": 100}, now=0.0).tat
    assert forget_idle(tat, now=0.5) == tat  # both cells still ahead of now
    assert forget_idle(tat, now=1.0) == {}
    cost = {"requests": 60, "tokens": 6000}
    assert admit(tat, [RPM, TPM], cost, now=2.0) == admit({}, [RPM, TPM], cost, now=2.0)
