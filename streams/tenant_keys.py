"""Tenants' signing secrets, read from the environment once (the config names the variables).

The router verifies with every configured key (``Keyring``); a producer signs with
its tenant's newest key whose secret it has (``signing_keys``). A key whose
variable is unset falls back to its ``demo_secret``, which the sample config sets
for the local demo only. Secrets are never logged; a fallback in use is, by key id.
"""

import logging
import os
from collections.abc import Iterable, Mapping

from processors.authenticate import SigningKey
from schemas.config import SwitchyardConfig, TenantKey

log = logging.getLogger(__name__)


def secret_for(key: TenantKey, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The key's secret: its environment variable, else its demo secret, else None."""
    value = (os.environ if environ is None else environ).get(key.secret_env)
    if value:
        return value.encode()
    if key.demo_secret is not None:
        return key.demo_secret.get_secret_value().encode()
    return None


class Keyring:
    """Every configured key's secret, resolved at start: the router's ``SecretLookup``."""

    def __init__(self, config: SwitchyardConfig, environ: Mapping[str, str] | None = None) -> None:
        self._secrets: dict[tuple[str, str], bytes] = {}
        for tenant, spec in config.tenants.items():
            for key in spec.keys:
                secret = secret_for(key, environ)
                if secret is not None:
                    self._secrets[(tenant, key.id)] = secret
        self.missing = sorted(
            f"{tenant}/{key.id} ({key.secret_env})"
            for tenant, spec in config.tenants.items()
            for key in spec.keys
            if (tenant, key.id) not in self._secrets
        )
        self.demo = sorted(
            f"{tenant}/{key.id}"
            for tenant, spec in config.tenants.items()
            for key in spec.keys
            if key.demo_secret is not None and not _is_set(key, environ)
        )

    def __call__(self, tenant: str, key_id: str) -> bytes | None:
        return self._secrets.get((tenant, key_id))

    def warn(self) -> None:
        """Log, once at start, keys that cannot verify and keys on their demo secret."""
        if self.missing:
            log.warning("no secret for keys %s: jobs they sign are refused", self.missing)
        if self.demo:
            log.warning("keys %s use their public demo_secret: set their variables", self.demo)


def signing_keys(
    config: SwitchyardConfig,
    tenants: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, SigningKey]:
    """Per tenant (all, or ``tenants``), the newest key whose secret is available."""
    out: dict[str, SigningKey] = {}
    for tenant in config.tenants if tenants is None else tenants:
        spec = config.tenants.get(tenant)
        for key in reversed(spec.keys if spec is not None else []):
            secret = secret_for(key, environ)
            if secret is not None:
                out[tenant] = SigningKey(tenant, key.id, secret)
                break
    return out


def _is_set(key: TenantKey, environ: Mapping[str, str] | None) -> bool:
    return bool((os.environ if environ is None else environ).get(key.secret_env))
