"""A synthetic outcome data set with planted signal and made-up model names."""

import gzip
import random
from pathlib import Path

import orjson

MODELS = ("alpha-small", "beta-mid", "gamma-large")
TOPICS = ("easy arithmetic sum", "hard proof lemma", "medium essay outline")


def synthetic_rows(n: int = 600, seed: int = 3) -> list[dict[str, object]]:
    """Small models fail 'hard' prompts and often 'medium' ones; the large one rarely fails."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = rng.randrange(3)
        words = " ".join(rng.choice(("the", "a", "of", "please", "now")) for _ in range(8))
        prompt = f"{TOPICS[kind]} {words} item {i}"
        good = {
            "alpha-small": (0.9, 0.1, 0.4)[kind],
            "beta-mid": (0.95, 0.45, 0.8)[kind],
            "gamma-large": (0.97, 0.9, 0.92)[kind],
        }
        price = {"alpha-small": 1e-5, "beta-mid": 1e-4, "gamma-large": 1e-3}
        rows.append(
            {
                "id": f"syn.{i}",
                "prompt": prompt,
                "task": "synthetic",
                "outcomes": {
                    m: {
                        "score": float(rng.random() < good[m]),
                        "cost_usd": price[m] * (1 + len(prompt) / 100),
                    }
                    for m in MODELS
                },
            }
        )
    return rows


def write_rows(path: Path, rows: list[dict[str, object]], gzipped: bool = False) -> Path:
    body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    path.write_bytes(gzip.compress(body) if gzipped else body)
    return path
