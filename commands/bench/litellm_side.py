"""LiteLLM's Router, in this process, over the same simulator and jobs.

Configured as a LiteLLM user would configure three model groups with fallbacks:
one deployment per model at the simulator, each group's deployment its first
model, its fallbacks the groups serving the rest. Everything that is not routing
is off (callbacks, cost-map download, retries, log lines per failure), so the
figures are LiteLLM's routing at its cheapest.

The deployments use LiteLLM's ``aiohttp_openai/`` provider by default: its own
aiohttp client for OpenAI-compatible servers, about a quarter less CPU per call
here than ``openai/`` (the OpenAI SDK over httpx), which ``provider="openai"``
selects. Either way every call goes through one aiohttp session owned by the
run, capped at ``concurrency`` connections like the ceiling's.
"""

import importlib
import logging
import os
from typing import Any, Literal

import aiohttp

from commands.bench.clients import ClientRun, drive
from commands.bench.jobs import Job
from schemas.errors import InvalidOption

Provider = Literal["aiohttp_openai", "openai"]
# The acompletion argument through which each provider takes a caller's aiohttp session.
_SESSION_ARGUMENT: dict[Provider, str] = {"aiohttp_openai": "client", "openai": "shared_session"}
_INSTALL_HINT = "LiteLLM is not installed: pip install -e '.[bench]'"
_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


async def litellm_run(
    base_url: str,
    jobs: list[Job],
    groups: dict[str, list[str]],
    concurrency: int,
    provider: Provider = "aiohttp_openai",
) -> ClientRun:
    """Every job through ``router.acompletion(model=job.group, ...)``, ``concurrency`` at once.

    A failed job (no fallback answered) is counted under LiteLLM's exception
    class. Raises InvalidOption when LiteLLM is not installed.
    """
    litellm = _import_litellm()
    router = litellm.Router(**router_settings(base_url, groups, provider))
    # A session of our own: LiteLLM's default caps connections at 500 per host, and its
    # global one outlives the event loop (a second run in the process finds it closed).
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        through = {_SESSION_ARGUMENT[provider]: session}

        async def call(job: Job) -> int:
            await router.acompletion(
                model=job.group, messages=job.messages, max_tokens=job.max_tokens, **through
            )
            return 200  # failures raise

        try:
            return await drive(f"litellm c={concurrency}", jobs, concurrency, call)
        finally:
            router.retire()


def router_settings(
    base_url: str, groups: dict[str, list[str]], provider: Provider = "aiohttp_openai"
) -> dict[str, Any]:
    """``litellm.Router`` keyword arguments: the deployments, the fallbacks, routing only."""
    deployments = {group: models[0] for group, models in groups.items()}
    target = _fallback_targets(groups)
    deployments.update({name: model for model, name in target.items() if name == model})
    model_list = [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"{provider}/{model}",
                "api_base": base_url,
                "api_key": "sk-bench",  # the simulator checks none; the client wants one
            },
        }
        for name, model in deployments.items()
    ]
    fallbacks = [
        {group: [target[m] for m in models[1:]]} for group, models in groups.items() if models[1:]
    ]
    return {"model_list": model_list, "fallbacks": fallbacks, "num_retries": 0}


def _fallback_targets(groups: dict[str, list[str]]) -> dict[str, str]:
    """The model group a fallback to each model goes to: the first group it leads, else a
    group of its own name (so each model has one deployment unless two groups share a lead)."""
    leads: dict[str, str] = {}
    for group, models in groups.items():
        leads.setdefault(models[0], group)
    return {m: leads.get(m, m) for models in groups.values() for m in models}


def _import_litellm() -> Any:
    # Before the import: LiteLLM otherwise fetches its cost map over the network.
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    try:
        # importlib, not an import statement: mypy then never reads LiteLLM's 3,000 files.
        litellm: Any = importlib.import_module("litellm")
    except ModuleNotFoundError as exc:
        raise InvalidOption(_INSTALL_HINT) from exc
    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    litellm.callbacks = []
    litellm.success_callback = []
    litellm.failure_callback = []
    for name in _LOGGERS:  # it logs every failed fallback; the run counts them instead
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return litellm
