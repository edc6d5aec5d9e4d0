"""The ceiling: a bare aiohttp client calling each job's primary model, nothing else.

No routing, no retries, no fallbacks: what the simulator serves to the cheapest
possible client on this machine, the bound Switchyard and LiteLLM both sit under.
"""

from typing import Any

import aiohttp
import orjson

from commands.bench.clients import ClientRun, drive
from commands.bench.jobs import Job

_JSON = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}


async def ceiling_run(
    base_url: str, jobs: list[Job], groups: dict[str, list[str]], concurrency: int
) -> ClientRun:
    """POST every job to ``{base_url}/chat/completions`` for its group's first model.

    One session whose connector holds at most ``concurrency`` connections; the
    answer is read and decoded as an OpenAI client would.
    """
    url = f"{base_url.rstrip('/')}/chat/completions"
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    # No total timeout: a run's slowest call waits for the whole queue ahead of it.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def call(job: Job) -> int:
            body = _body(groups[job.group][0], job)
            async with session.post(url, data=orjson.dumps(body), headers=_JSON) as response:
                orjson.loads(await response.read())
                return response.status

        return await drive(f"ceiling c={concurrency}", jobs, concurrency, call)


def _body(model: str, job: Job) -> dict[str, Any]:
    return {"model": model, "messages": job.messages, "max_tokens": job.max_tokens}
