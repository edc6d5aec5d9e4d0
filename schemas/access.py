"""Tokens for the loopback HTTP surfaces: the contract between a surface and its callers.

The telemetry worker's query service, the simulator's ``/admin/...`` endpoints
and the router's ``/budget/`` page listen on 127.0.0.1 only, but loopback is not
a boundary: every local process and user can connect, and a browser page can
post to it. Each therefore requires ``Authorization: Bearer <token>``:

- the query service makes its own token at start and writes it, with its
  address, to a state file only its user can read (``telemetry.json``, mode 0600);
- the simulator and the router read ``ADMIN_TOKEN_ENV``; ``switchyard up`` (and the
  stack the demo, benchmark, chaos harness and tests start) makes one token per
  stack, passes it to its processes in that variable and writes it to the stack's
  state file (``stack.json``, mode 0600), where ``switchyard budget`` finds it.
  A surface started without the variable accepts no token at all.

``token_matches`` compares in constant time; an empty expected token matches nothing.
"""

import hmac
import secrets

ADMIN_TOKEN_ENV = "SWITCHYARD_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a token
AUTHORIZATION = "Authorization"
_SCHEME = "Bearer "


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def bearer(token: str) -> dict[str, str]:
    """The request header that presents ``token``."""
    return {AUTHORIZATION: f"{_SCHEME}{token}"}


def token_matches(header: str | None, expected: str | None) -> bool:
    """True when ``header`` (an Authorization value) presents ``expected``."""
    if not expected or not header or not header.startswith(_SCHEME):
        return False
    return hmac.compare_digest(header[len(_SCHEME) :].encode(), expected.encode())
