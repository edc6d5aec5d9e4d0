"""A running stack's loopback HTTP surfaces want the stack's token; commands have it."""

import stat
from pathlib import Path

import httpx
import orjson
import pytest

from commands.cli import main
from schemas.access import bearer
from streams.local.broker import EmbeddedBroker
from streams.local.stack import stack_state_file
from tests.helpers import point_cli_at, running_stack

pytestmark = pytest.mark.slow


def test_router_page_and_simulator_admin_want_the_stack_token(
    broker: EmbeddedBroker,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with running_stack(broker, namespace, tmp_path) as stack:
        router = f"http://127.0.0.1:{stack.router_web_port}"
        admin = (stack.simulator_url or "").removesuffix("/v1")
        for headers in ({}, bearer("not-the-token")):
            assert httpx.get(f"{router}/budget/", headers=headers).status_code == 401
            assert httpx.get(f"{admin}/admin/stats", headers=headers).status_code == 401
        assert httpx.get(f"{router}/budget/", headers=stack.admin_headers()).status_code == 200
        assert httpx.get(f"{admin}/admin/stats", headers=stack.admin_headers()).status_code == 200
        # faust's own table pages would show the same figures to anyone.
        assert httpx.get(f"{router}/table/budget/acme/").status_code == 404
        assert httpx.get(f"{router}/router/budget/acme/").status_code == 404

        stack.publish_state()
        state_file = stack_state_file(stack.env)
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        assert orjson.loads(state_file.read_bytes())["admin_token"] == stack.admin_token
        point_cli_at(stack.env, monkeypatch)
        capsys.readouterr()
        assert main(["budget"]) == 0  # the token from the stack's state file
        assert "tenant" in capsys.readouterr().out

        state_file.unlink()  # no stack state: the variable, or nothing
        monkeypatch.delenv("SWITCHYARD_ADMIN_TOKEN", raising=False)
        assert main(["budget", "--web-port", str(stack.router_web_port)]) == 1
        assert "refused the token" in capsys.readouterr().err
        monkeypatch.setenv("SWITCHYARD_ADMIN_TOKEN", stack.admin_token)
        assert main(["budget", "--web-port", str(stack.router_web_port)]) == 0
