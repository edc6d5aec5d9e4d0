"""Token and cost estimates made before a provider has answered."""

from schemas.config import ModelSpec
from schemas.messages import InferenceRequest

# About four characters per token for English text, plus per-message framing.
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def estimate_input_tokens(request: InferenceRequest) -> int:
    return request.prompt_chars() // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(request.messages)


def estimate_cost_usd(model: ModelSpec, input_tokens: int, max_output_tokens: int) -> float:
    """An upper bound: the whole output budget is assumed to be used."""
    return model.cost_usd(input_tokens, max_output_tokens)
