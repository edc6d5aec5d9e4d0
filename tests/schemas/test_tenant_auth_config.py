"""The auth switch in the config: keys, their secrets' variables, the freshness window."""

import pytest

from schemas.config import REVEAL_SECRETS, TenantKey
from schemas.config_file import parse_config
from schemas.errors import ConfigError
from tests.helpers import sample_config
from tests.schemas.test_config_file import MINIMAL

KEY = "{id: acme-1, secret_env: ACME_KEY}"


def issues_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "auth.yaml")
    return str(caught.value)


def with_acme(spec: str, extra: str = "") -> str:
    return MINIMAL.replace("acme: {}", f"acme: {spec}") + extra


def test_the_sample_config_signs_every_tenant() -> None:
    config = sample_config()
    assert {t: s.auth for t, s in config.tenants.items()} == dict.fromkeys(config.tenants, "signed")
    assert all(s.keys for s in config.tenants.values())
    assert config.security.signature_window_s == 300


def test_auth_defaults_to_none_without_keys() -> None:
    spec = parse_config(MINIMAL).tenants["acme"]
    assert (spec.auth, spec.keys) == ("none", [])


def test_signed_needs_a_key() -> None:
    assert "auth: signed needs at least one key" in issues_of(with_acme("{auth: signed}"))


def test_key_ids_are_unique_within_a_tenant() -> None:
    text = with_acme(f"{{auth: signed, keys: [{KEY}, {KEY}]}}")
    assert "key ids must be unique" in issues_of(text)


def test_secret_env_is_a_variable_name_not_a_secret() -> None:
    text = with_acme("{auth: signed, keys: [{id: k1, secret_env: 'hunter2 is my password'}]}")
    assert "tenants.acme.keys[0].secret_env" in issues_of(text)


def test_principal_is_refused_unless_the_broker_authenticates() -> None:
    text = with_acme("{auth: principal}")
    assert "needs a broker that authenticates producers" in issues_of(text)
    allowed = parse_config(text + "security: {broker_authenticates: true}\n")
    assert allowed.tenants["acme"].auth == "principal"


def test_the_window_may_not_outlast_the_dedup_window() -> None:
    text = MINIMAL + "security: {signature_window_s: 7200}\n"
    assert "signature_window_s must not exceed" in issues_of(text)
    parse_config(text + "dispatch: {dedup_window_s: 7200}\n")


def test_a_demo_secret_is_masked_in_dumps_unless_revealed_on_purpose() -> None:
    demo = "plain-demo"
    key = TenantKey.model_validate({"id": "k1", "secret_env": "K1", "demo_secret": demo})
    assert demo not in repr(key)
    assert demo not in str(key.model_dump(mode="json"))
    assert demo not in key.model_dump_json()
    revealed = key.model_dump(mode="json", context={REVEAL_SECRETS: True})
    assert demo in revealed.values()
    assert TenantKey.model_validate(revealed) == key
