"""Secrets from the environment: the router's keyring and the producers' keys."""

from schemas.config import SwitchyardConfig
from streams.tenant_keys import Keyring, signing_keys
from tests.helpers import sample_config

BASE = sample_config()


def rotated() -> SwitchyardConfig:
    raw = BASE.model_dump()
    raw["tenants"]["acme"]["keys"] = [
        {"id": "acme-1", "secret_env": "SY_ACME_1", "demo_secret": "demo-1"},
        {"id": "acme-2", "secret_env": "SY_ACME_2"},
    ]
    return SwitchyardConfig.model_validate(raw)


def test_the_variable_wins_over_the_demo_secret() -> None:
    ring = Keyring(rotated(), environ={"SY_ACME_1": "from-env"})
    assert ring("acme", "acme-1") == b"from-env"
    assert "acme/acme-1" not in ring.demo


def test_the_demo_secret_serves_while_the_variable_is_unset_and_is_reported() -> None:
    ring = Keyring(rotated(), environ={})
    assert ring("acme", "acme-1") == b"demo-1"
    assert "acme/acme-1" in ring.demo


def test_a_key_with_no_secret_anywhere_verifies_nothing_and_is_reported() -> None:
    ring = Keyring(rotated(), environ={})
    assert ring("acme", "acme-2") is None
    assert ring.missing == ["acme/acme-2 (SY_ACME_2)"]


def test_producers_sign_with_the_newest_key_they_have() -> None:
    assert signing_keys(rotated(), environ={})["acme"].key_id == "acme-1"
    newest = signing_keys(rotated(), ["acme"], environ={"SY_ACME_2": "new"})
    assert list(newest) == ["acme"]
    assert (newest["acme"].key_id, newest["acme"].secret) == ("acme-2", b"new")


def test_tenants_without_keys_get_none() -> None:
    raw = BASE.model_dump()
    raw["tenants"]["open"] = {}
    assert "open" not in signing_keys(SwitchyardConfig.model_validate(raw), environ={})
