"""Per-prompt outcomes of several models: what learned routing trains and is judged on.

One JSON line per prompt (plain or gzip files, see ``commands/outcome_files.py``)::

    {"id": "gsm8k.0", "prompt": "...", "task": "gsm8k", "split": "train",
     "outcomes": {"<model>": {"score": 0.0..1.0, "cost_usd": 0.0}, ...}}

``split`` is optional: a row without one is put in train or test by a stable
hash of its id (70/30), so any file can be used as it is. A model missing from
``outcomes`` has no result for that prompt. Unknown fields are ignored.
"""

import zlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")
TRAIN_PERCENT = 70


class Outcome(BaseModel):
    """How one model did on one prompt: a score in [0, 1] (1 = correct), what it cost,
    and (optional) the text it answered, which learned answer checks train on."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    score: float = Field(ge=0, le=1)
    cost_usd: float = Field(ge=0)
    response: str | None = None


class OutcomeRow(BaseModel):
    """One prompt, its task, and each model's outcome on it."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    id: str = Field(min_length=1)
    prompt: str
    task: str = Field(min_length=1)
    split: Split | None = None
    outcomes: dict[str, Outcome]

    @property
    def effective_split(self) -> Split:
        """The row's own split, else train or test by a stable hash of its id (70/30)."""
        if self.split is not None:
            return self.split
        return "train" if zlib.crc32(self.id.encode()) % 100 < TRAIN_PERCENT else "test"
