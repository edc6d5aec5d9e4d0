"""``switchyard send``: one job from the shell, its reply printed with the routing explanation."""

import asyncio
import sys
import uuid
from typing import Annotated, Literal

import typer

from commands.app import SEND, new_app
from commands.stack_control import current_config, keys_to_send_as, require_bootstrap
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from streams.local.environment import Environment
from streams.topics import TopicCatalogue

app = new_app("Send a job.")


@app.command(rich_help_panel=SEND)
def send(
    prompt: str,
    tenant: Annotated[str, typer.Option()],
    quality: Annotated[Literal["economy", "balanced", "premium"] | None, typer.Option()] = None,
    task: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option(help="pin a model")] = None,
    max_tokens: Annotated[int | None, typer.Option()] = None,
    data_classification: Annotated[
        Literal["public", "internal", "confidential", "restricted"] | None, typer.Option()
    ] = None,
    timeout: float = 60,
) -> int:
    """Submit one job and print its reply with the routing explanation.

    Signed with the tenant's newest key whose secret is set (its ``secret_env``).
    """
    from streams.client import SwitchyardClient

    env = Environment.from_env()
    config = current_config(env)
    bootstrap = require_bootstrap(env)
    keys = keys_to_send_as(config, tenant)
    request = InferenceRequest(
        request_id=f"cli-{uuid.uuid4().hex[:12]}",
        tenant=tenant,
        messages=[ChatMessage(role="user", content=prompt)],
        quality=quality,
        task=task,
        model=model,
        max_tokens=max_tokens,
        data_classification=data_classification,
    )

    async def request_reply() -> InferenceReply:
        catalogue = TopicCatalogue(env.namespace)
        async with SwitchyardClient(
            bootstrap, catalogue, max_message_bytes=config.limits.max_message_bytes, keys=keys
        ) as client:
            return await client.request(request, timeout_s=timeout)

    reply = asyncio.run(request_reply())
    sys.stdout.write(reply.model_dump_json(indent=2, exclude_none=True) + "\n")
    return 0 if reply.status == "ok" else 1
