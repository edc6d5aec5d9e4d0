"""Synthetic outcome rows with a planted signal, for learned-routing tests.

Each prompt mixes filler words with "hard" and "easy" marker words; its
difficulty is the task's base plus the markers (and noise). Smaller models
fail sooner as difficulty grows, and cost ten times less per step up, so a
router that reads the markers beats every mix of single models.
"""

import gzip
import math
import random
from pathlib import Path
from typing import Any

import orjson

MODELS = {  # name -> (intercept, slope on difficulty, USD per call, USD per char)
    "alpha-small": (1.5, -2.0, 1e-5, 1e-8),
    "beta-mid": (2.5, -1.6, 1e-4, 1e-7),
    "gamma-large": (3.5, -1.0, 1e-3, 1e-6),
}
TASKS = {"algebra": 0.6, "poetry": -0.4, "trivia": 0.0}
HARD = ["integral", "eigenvalue", "proof", "lemma", "topology", "recursion"]
EASY = ["hello", "simple", "list", "colour", "name", "short"]
FILLER = [f"w{i}" for i in range(200)]


def synthetic_rows(
    n: int, seed: int = 7, models: dict[str, tuple[float, float, float, float]] | None = None,
    with_split: bool = False, fractional: bool = True, responses: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """``n`` rows as dicts (JSON-ready); scores are Bernoulli draws, some halves if fractional.

    With ``responses`` each outcome carries an answer ending in one multiplication:
    a bad answer's step does not compute 70% of the time, a good one's always does,
    so a learned or arithmetic check can tell them apart (not perfectly).
    """
    rnd = random.Random(seed)
    models = models or MODELS
    rows = []
    for i in range(n):
        task = rnd.choice(sorted(TASKS))
        hard, easy = rnd.randint(0, 3), rnd.randint(0, 3)
        words = rnd.choices(FILLER, k=rnd.randint(10, 40))
        words += rnd.sample(HARD, hard) + rnd.sample(EASY, easy)
        rnd.shuffle(words)
        prompt = " ".join(words)
        difficulty = TASKS[task] + 1.2 * hard - 0.8 * easy + rnd.gauss(0, 0.3)
        outcomes = {}
        for name, (a, b, base, per_char) in models.items():
            p = 1 / (1 + math.exp(-(a + b * difficulty)))
            score = 1.0 if rnd.random() < p else 0.0
            if fractional and rnd.random() < 0.05:
                score = 0.5
            outcomes[name] = {"score": score, "cost_usd": base + per_char * len(prompt)}
            if responses:
                outcomes[name]["response"] = _response(rnd, score)
        row: dict[str, Any] = {"id": f"syn.{seed}.{i}", "prompt": prompt, "task": task}
        if with_split:
            row["split"] = "test" if i % 10 < 3 else "train"
        row["outcomes"] = outcomes
        rows.append(row)
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]], compress: bool = False) -> Path:
    data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _response(rnd: random.Random, score: float) -> str:
    a, b = rnd.randint(2, 99), rnd.randint(2, 99)
    shown = a * b if score >= 0.5 or rnd.random() < 0.3 else a * b + rnd.randint(1, 9)
    words = " ".join(rnd.choices(FILLER, k=rnd.randint(3, 12)))
    return f"{words}, so {a} * {b} = {shown}\n#### {shown}"
