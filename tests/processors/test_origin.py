"""A forwarded job carries its sealed origin, and a second copy of one forward is a replay."""

from datetime import UTC, datetime

from processors.authenticate import sign
from processors.budget import Position
from processors.origin import ORIGIN_HEADER, origin_header, sealed_origin
from processors.router_hop import HopResult, RouterView, route_hop
from schemas.budget import BudgetSnapshot
from schemas.codec import dumps
from schemas.decision import DispatchJob
from streams.outputs import records
from streams.topics import TopicCatalogue
from tests.helpers import demo_keys, demo_secrets, make_request, sample_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONFIG = sample_config()
KEY = b"k" * 32
CATALOGUE = TopicCatalogue("switchyard")
TOPIC = CATALOGUE.requests.name


def hop(raw: bytes, headers: dict[str, bytes], at: Position, view: RouterView) -> HopResult:
    view = RouterView(
        budget=view.budget, home=view.home, cluster_key=view.cluster_key,
        secrets=demo_secrets(CONFIG),
    )  # fmt: skip
    return route_hop(raw, headers, at, False, CONFIG, view, NOW, lambda: 1.0)


def signed(raw: bytes) -> dict[str, bytes]:
    return dict(sign(raw, demo_keys(CONFIG)["acme"], NOW))


def forwarded(raw: bytes, at: Position) -> dict[str, bytes]:
    """What the router owning ``at``'s partition writes to the tenant's home partition."""
    view = RouterView(budget=lambda t: None, home=lambda t: 0, cluster_key=KEY)
    [moved] = hop(raw, signed(raw), at, view).outputs
    assert moved.kind == "rekey" and moved.origin == (at.partition, at.offset)
    [(topic, key, value, headers)] = records([moved], CATALOGUE, signed(raw), KEY)
    assert (topic, key, value) == (TOPIC, "acme", raw)
    return dict(headers or [])


def test_a_second_copy_of_one_forward_is_a_replay_at_home() -> None:
    raw = dumps(make_request(request_id="r-fwd"))
    headers = forwarded(raw, Position(TOPIC, 3, 96))
    stored: dict[str, BudgetSnapshot] = {}
    home = RouterView(budget=stored.get, home=lambda t: 0, cluster_key=KEY)

    first = hop(raw, headers, Position(TOPIC, 0, 102), home)
    [dispatch] = first.outputs
    assert isinstance(dispatch.message, DispatchJob)
    assert (dispatch.message.source.partition, dispatch.message.source.offset) == (3, 96)
    assert first.snapshot is not None and first.snapshot.applied == {f"{TOPIC}:3": 96}
    stored["acme"] = first.snapshot

    again = hop(raw, headers, Position(TOPIC, 0, 106), home)  # the copy a new owner sent
    assert again.outputs == []  # decided and sent before: nothing twice
    assert again.snapshot is not None and again.snapshot.requests == 1


def test_an_origin_without_the_cluster_keys_seal_counts_for_nothing() -> None:
    raw = dumps(make_request(request_id="r-forged"))
    good = forwarded(raw, Position(TOPIC, 3, 96))[ORIGIN_HEADER]
    _, other_key = origin_header(b"x" * 32, TOPIC, b"acme", raw, Position(TOPIC, 3, 9999))
    mac = good.split(b":")[2]
    forged = [
        other_key,  # sealed with another key
        b"3:9999:" + mac,  # a later offset under a real seal
        good + b"0",  # a damaged seal
        b"3:96",  # no seal
    ]
    for value in forged:
        assert sealed_origin({ORIGIN_HEADER: value}, KEY, TOPIC, b"acme", raw) is None
    assert sealed_origin({ORIGIN_HEADER: good}, KEY, TOPIC, b"globex", raw) is None  # other key
    assert sealed_origin({ORIGIN_HEADER: good}, KEY, TOPIC, b"acme", raw + b" ") is None
    assert sealed_origin({ORIGIN_HEADER: good}, KEY, TOPIC, b"acme", raw) == Position(TOPIC, 3, 96)

    home = RouterView(budget=lambda t: None, home=lambda t: 0, cluster_key=KEY)
    at_home = Position(TOPIC, 0, 102)
    result = hop(raw, {**signed(raw), ORIGIN_HEADER: b"3:9999:" + mac}, at_home, home)
    assert result.snapshot is not None and result.snapshot.applied == {f"{TOPIC}:0": 102}


def test_a_forwarded_origin_is_never_passed_on_as_written() -> None:
    # A producer's own sy-origin on a job is dropped; the forward gets a fresh one.
    raw = dumps(make_request(request_id="r-own"))
    planted = {**signed(raw), ORIGIN_HEADER: b"1:1:00"}
    view = RouterView(budget=lambda t: None, home=lambda t: 0, cluster_key=KEY)
    [moved] = hop(raw, planted, Position(TOPIC, 2, 5), view).outputs
    [(_, _, _, headers)] = records([moved], CATALOGUE, planted, KEY)
    origins = [v for k, v in headers or [] if k == ORIGIN_HEADER]
    assert len(origins) == 1 and origins[0].startswith(b"2:5:")
