import orjson
import pytest

from processors.classify import classify
from processors.validate import MAX_JSON_DEPTH, json_depth, parse_request, salvage_address
from schemas.codec import dumps
from schemas.errors import InvalidRequest, MessageTooLarge, NestingTooDeep, UnknownTenant
from tests.helpers import make_request, sample_config


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return sample_config()


def body(**fields: object) -> bytes:
    base: dict[str, object] = {
        "request_id": "r-1",
        "tenant": "acme",
        "messages": [{"role": "user", "content": "hi"}],
    }
    base.update(fields)
    return orjson.dumps(base)


def test_valid_request_parses(config) -> None:  # type: ignore[no-untyped-def]
    request = parse_request(body(quality="premium"), config)
    assert request.quality == "premium"


@pytest.mark.parametrize(
    ("raw", "error", "fragment"),
    [
        (b"{not json", InvalidRequest, "not valid JSON"),
        (body(max_tokens="many"), InvalidRequest, "max_tokens"),
        (
            orjson.dumps({"request_id": "r", "tenant": "acme"}),
            InvalidRequest,
            "messages: Field required",
        ),
        (body(tenant="nobody"), UnknownTenant, "'nobody' is not configured"),
        (body(deadline="2026-01-01T00:00:00"), InvalidRequest, "timezone"),
        (None, InvalidRequest, "empty"),
    ],
)
def test_bad_input_says_why(config, raw, error, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as caught:
        parse_request(raw, config)
    assert fragment in caught.value.message


def test_oversized_message_is_refused_before_parsing(config) -> None:  # type: ignore[no-untyped-def]
    raw = body(messages=[{"role": "user", "content": "x" * 2_000_000}])
    with pytest.raises(MessageTooLarge):
        parse_request(raw, config)


def test_error_text_never_echoes_the_prompt(config) -> None:  # type: ignore[no-untyped-def]
    raw = body(messages=[{"role": "robot", "content": "my secret plan"}])
    with pytest.raises(InvalidRequest) as caught:
        parse_request(raw, config)
    assert "secret" not in caught.value.message


def test_salvage_finds_reply_address() -> None:
    raw = orjson.dumps({"request_id": "r-9", "tenant": "acme", "reply_to": "my.replies", "x": 1})
    assert salvage_address(raw, 1000) == ("r-9", "acme", "my.replies")
    assert salvage_address(b"[1, 2]", 1000) == (None, None, None)


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Write a python function to parse dates", "code"),
        ("Solve 12 * 7 = ?", "math"),
        ("Summarize this article", "summarization"),
        ("Translate this into French", "translation"),
        ("Explain why the moon has phases", "reasoning"),
        ("good morning!", "chat"),
    ],
)
def test_classifier(prompt: str, task: str) -> None:
    assert classify(make_request(prompt), "chat")[0] == task


def test_task_hint_wins() -> None:
    assert classify(make_request("Write python code", task="math"), "chat") == ("math", "hint")


def nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = {"k": [value]} if depth % 2 else [value]
    return value


@pytest.mark.parametrize("depth", [65, 300, 600, 1000])
def test_deep_nesting_is_refused_with_its_own_code(config, depth: int) -> None:  # type: ignore[no-untyped-def]
    # orjson writes at most 255 levels: the deep part is spelled out by hand.
    deep = b'{"k":' * depth + b"1" + b"}" * depth
    raw = body(response_format={"schema": "X"}).replace(b'"X"', deep)
    with pytest.raises(NestingTooDeep) as caught:
        parse_request(raw, config)
    assert caught.value.code == "nesting_too_deep"
    assert isinstance(caught.value, InvalidRequest)


def test_nesting_up_to_the_limit_is_accepted_and_serialisable(config) -> None:  # type: ignore[no-untyped-def]
    schema = nested(MAX_JSON_DEPTH - 4)
    request = parse_request(body(response_format={"schema": schema}), config)
    assert orjson.loads(dumps(request))["response_format"]["schema"] == schema


@pytest.mark.parametrize(
    ("data", "depth"), [(1, 0), ("s", 0), ({}, 1), ([[]], 2), ({"a": [{"b": 1}]}, 3)]
)
def test_json_depth_counts_containers(data: object, depth: int) -> None:
    assert json_depth(data, 64) == depth


def test_json_depth_stops_counting_past_the_limit() -> None:
    assert json_depth(nested(10_000), 64) == 65


def test_the_raw_prompt_text_is_the_validated_one() -> None:
    import orjson

    from processors.classify import last_user_text, raw_last_user_text

    bodies = [
        {"messages": [{"role": "user", "content": "plain"}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u" * 5000}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                   {"type": "image_url", "image_url": {"url": "x"}},
                                                   {"type": "text", "text": "b"}]}]},
        {"messages": [{"role": "assistant", "content": "only"}]},
    ]  # fmt: skip
    for body in bodies:
        request = make_request(**body)
        raw = orjson.dumps(request.model_dump(mode="json", exclude_none=True))
        assert raw_last_user_text(raw) == last_user_text(request)
    assert raw_last_user_text(b"not json") is None
    assert raw_last_user_text(None) is None
    assert raw_last_user_text(b'{"messages": 3}') is None
