"""The redaction detectors against a corpus: every planted value found and replaced by
its placeholder, no near miss touched."""

import random
import re

import pytest

from processors.redact import Redactor, iban_ok, luhn_ok

# (text as it might appear in a prompt or a provider's error, the placeholder it must get)
PLANTED = [
    ("jane.doe@example.com", "EMAIL"),
    ("ops+alerts@mail.acme-corp.co.uk", "EMAIL"),
    ("4111 1111 1111 1111", "CARD"),
    ("5500-0000-0000-0004", "CARD"),
    ("378282246310005", "CARD"),
    ("6011111111111117", "CARD"),
    ("GB82 WEST 1234 5698 7654 32", "IBAN"),
    ("DE89370400440532013000", "IBAN"),
    ("FR1420041010050500013M02606", "IBAN"),
    ("+44 20 7946 0958", "PHONE"),
    ("+1 (415) 555-0132", "PHONE"),
    ("(415) 555-0132", "PHONE"),
    ("415-555-0132", "PHONE"),
    ("+49 30 901820", "PHONE"),
    ("sk-proj-" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7d", "API_KEY"),
    ("sk-ant-api03-" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm", "API_KEY"),
    ("AKIAIOSFODNN7EXAMPLE", "API_KEY"),
    ("ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "API_KEY"),
    ("xoxb-1234567890-abcdefghij", "API_KEY"),
    ("AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "API_KEY"),
    ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "API_KEY"),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "JWT",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nx9/abc==\n"
        "-----END RSA PRIVATE KEY-----",
        "PRIVATE_KEY",
    ),
]

# Secrets whose name stays: only the value after it is replaced.
ASSIGNED = [
    ("password=hunter2hunter", "password=[SECRET]"),
    ("api_key: 'abcd1234efgh'", "api_key: '[SECRET]'"),
    ('"client_secret": "Zx9-Qw8_Er7"', '"client_secret": "[SECRET]"'),
    ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456", "Authorization: Bearer [SECRET]"),
]

# Look like the above, are not: must come out unchanged.
NEAR_MISSES = [
    "card 4111 1111 1111 1112 fails Luhn",
    "order 1234567890123 shipped",
    "at 2026-11-30 07:45:53 UTC",
    "litellm 1.110.2 on Python 3.11.7",
    "broker on 127.0.0.1:41615",
    "costs $1,234.56 or 1 000 000 USD",
    "ISBN 978-3-16-148410-0",
    "request 123e4567-e89b-12d3-a456-426614174000",
    "the task-ant-hill and sk-short",
    "the token is valid; password reset link sent",
    "DE12 is a label, GB82 WEST 1234 5698 7654 33 fails mod-97",
    "models gpt-4o-mini and claude-3-5-sonnet-20241022",
    "call 555-0132 or extension 4411",
    "partition 3 offset 1234567, request chaos-poison-abc123-000042",
    "2+2=4 and 12 + 34 = 46",
    "user@localhost is not an address",
]


@pytest.mark.parametrize(("value", "kind"), PLANTED)
def test_every_planted_value_is_replaced_by_its_placeholder(value: str, kind: str) -> None:
    text = f"Please help, my details: {value}. Thanks!"
    assert Redactor().redact(text) == f"Please help, my details: [{kind}]. Thanks!"


@pytest.mark.parametrize(("text", "redacted"), ASSIGNED)
def test_an_assigned_secret_keeps_its_name(text: str, redacted: str) -> None:
    assert Redactor().redact(text) == redacted


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_left_alone(text: str) -> None:
    assert Redactor().find(text) == []


def test_a_paragraph_with_everything_keeps_only_its_words() -> None:
    values = [value for value, _ in PLANTED]
    text = " and ".join(values)
    redacted = Redactor().redact(text)
    assert not any(value in redacted for value in values)
    assert redacted == " and ".join(f"[{kind}]" for _, kind in PLANTED)


def test_patterns_from_config_get_their_own_placeholder() -> None:
    redactor = Redactor({"employee_id": r"\bEMP-\d{6}\b"})
    assert redactor.redact("EMP-004211 asked jo@example.com") == "[EMPLOYEE_ID] asked [EMAIL]"


def test_the_checksums() -> None:
    assert luhn_ok("4111-1111-1111-1111") and not luhn_ok("4111-1111-1111-1112")
    assert not luhn_ok("0" * 12)  # too short to be a card
    assert iban_ok("gb82 west 1234 5698 7654 32") and not iban_ok("GB82WEST12345698765433")
    assert not iban_ok("GB82-WEST")


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("4111 1111 1111 1111 378282246310005", "[CARD] [CARD]"),
        ("378282246310005 6011111111111117 ok", "[CARD] [CARD] ok"),
        ("GB82 WEST 1234 5698 7654 32 ABCD EFGH", "[IBAN] ABCD EFGH"),
    ],
)
def test_values_side_by_side_are_each_found(text: str, redacted: str) -> None:
    # A greedy match across both fails its check; it is cut back, and the search goes on.
    assert Redactor().redact(text) == redacted


def test_prompt_words_echoed_in_any_order_keep_no_whole_card_number() -> None:
    # What the simulator (and a model quoting its prompt) does: the prompt's words, picked
    # at random and joined by spaces, so card numbers stand next to other digit groups.
    words = re.findall(r"\w+", " ".join(value for value, _ in PLANTED))
    cards = ["378282246310005", "6011111111111117"]
    redactor = Redactor()
    for seed in range(500):
        rng = random.Random(seed)
        text = " ".join(rng.choice(words) for _ in range(40))
        redacted = redactor.redact(text)
        assert not [card for card in cards if card in redacted], (seed, text)


def test_a_prompt_is_redacted_before_an_external_provider_only_for_the_named_classes() -> None:
    from processors.redact import as_sent_to
    from schemas.redaction import RedactionSettings
    from tests.helpers import make_request, sample_config

    base = sample_config()
    config = base.model_copy(update={"redaction": RedactionSettings(
        before_external=["confidential"])})  # fmt: skip
    external, onprem = config.model("sim-medium"), config.model("sim-local")
    assert external is not None and onprem is not None
    text = "reach me at jo.bloggs@example.com"
    parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": "x"}}]
    confidential = make_request(text, data_classification="confidential")
    multi = confidential.model_copy(update={"messages": [
        confidential.messages[0].model_copy(update={"content": parts})]})  # fmt: skip
    internal = make_request(text, data_classification="internal")

    assert as_sent_to(confidential, external, config).messages[0].text() == "reach me at [EMAIL]"
    sent = as_sent_to(multi, external, config).messages[0].content
    assert (
        isinstance(sent, list) and sent[0]["text"] == "reach me at [EMAIL]" and sent[1] == parts[1]
    )
    assert as_sent_to(confidential, onprem, config) is confidential  # internal provider
    assert as_sent_to(internal, external, config) is internal  # class not named
    assert as_sent_to(confidential, external, base) is confidential  # nothing configured
