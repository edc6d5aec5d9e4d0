"""Sealing outputs, the readers' gate, and the cluster key a worker needs to start."""

import logging
from pathlib import Path

import pytest

from commands.cli import main
from processors.outputs import Output
from processors.seal import CLUSTER_KEY_ENV, SEAL_HEADER, is_sealed
from schemas.errors import ClusterKeyMissing
from streams.kafka.seals import SealGate, cluster_key_from_env
from streams.outputs import records
from streams.topics import TopicCatalogue
from tests.helpers import SAMPLE_CONFIG, make_request

KEY = b"cluster-key-for-tests-0123456789"


def test_internal_outputs_are_sealed_and_outputs_leaving_switchyard_are_not() -> None:
    catalogue = TopicCatalogue("sy")
    request = make_request()
    outputs = [
        Output("settlement", "acme", b'{"a": 1}'),
        Output("dispatch", "acme", request, headers=True),
        Output("retry", "acme", b"{}", retry_tier=1),
        Output("cache", None, b"{}"),
        Output("dead_letter", "acme", b"{}", headers=True),
        Output("reply", "acme", request, headers=True),
        Output("pre_step", "acme", b"{}", topic="sy.pre.acme", headers=True),
    ]
    job_headers = {"traceparent": b"t", SEAL_HEADER: b"an earlier hop's seal"}
    sent = records(outputs, catalogue, job_headers, KEY)
    for (topic, key, value, headers), output in zip(sent, outputs, strict=True):
        names = [name for name, _ in headers or []]
        if output.kind in ("reply", "pre_step"):
            assert names == ["traceparent"], output.kind
            continue
        assert names.count(SEAL_HEADER) == 1, output.kind
        assert ("traceparent" in names) is output.headers
        assert is_sealed(KEY, topic, key.encode() if key else None, value, headers)
        assert not is_sealed(b"x" * 32, topic, key.encode() if key else None, value, headers)
    assert sent[2][0] == catalogue.retry[1].name


def test_only_a_rekeyed_job_keeps_its_tenants_signature() -> None:
    signature = {"sy-tenant": b"acme", "sy-signature": b"ab", "traceparent": b"t"}
    outputs = [
        Output("rekey", "acme", b"{}", topic="sy.requests", headers=True, partition=2),
        Output("dispatch", "acme", b"{}", headers=True),
        Output("pre_step", "acme", b"{}", topic="sy.pre.acme", headers=True),
    ]
    sent = records(outputs, TopicCatalogue("sy"), signature, KEY)
    names = [sorted(name for name, _ in headers or []) for _, _, _, headers in sent]
    assert names == [
        ["sy-signature", "sy-tenant", "traceparent"],  # as written, not sealed
        [SEAL_HEADER, "traceparent"],
        ["traceparent"],
    ]


def test_the_gate_drops_and_counts_and_logs_once_per_topic_then_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = SealGate(KEY, "provider")
    good = records([Output("settlement", "acme", b"{}")], TopicCatalogue("sy"), None, KEY)[0]
    assert gate.admits(good[0], b"acme", good[2], good[3])
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            assert not gate.admits("sy.settlements", b"acme", b"{}", None)
        assert not gate.admits("sy.health", b"m", b"{}", [(SEAL_HEADER, b"0" * 64)])
    assert gate.dropped == {"sy.settlements": 50, "sy.health": 1}
    assert gate.total_dropped == 51
    warnings = [r for r in caplog.records if "without a valid seal" in r.getMessage()]
    assert len(warnings) == 2  # the first drop on each topic; the other 49 only counted
    assert "sy.health 1, sy.settlements 50" in warnings[1].getMessage()
    assert "cluster-key" not in caplog.text


@pytest.mark.parametrize("value", [None, "", "short"])
def test_no_usable_cluster_key_is_an_operator_error(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv(CLUSTER_KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(CLUSTER_KEY_ENV, value)
    with pytest.raises(ClusterKeyMissing) as caught:
        cluster_key_from_env()
    assert caught.value.code == "cluster_key_missing"
    assert CLUSTER_KEY_ENV in str(caught.value)
    monkeypatch.setenv(CLUSTER_KEY_ENV, KEY.decode())
    assert cluster_key_from_env() == KEY


@pytest.mark.parametrize("kind", ["router", "provider", "telemetry"])
def test_a_worker_without_the_cluster_key_refuses_to_start(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(CLUSTER_KEY_ENV, raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("SWITCHYARD_HOME", str(tmp_path))
    monkeypatch.setenv("SWITCHYARD_CONFIG", str(SAMPLE_CONFIG))
    assert main(["worker", kind]) == 1
    assert CLUSTER_KEY_ENV in capsys.readouterr().err
