"""Write an outcome file unlike the shared ones, for checking calibration on unseen data.

Eleven made-up models over twenty made-up tasks; each model has its own skill
per task and a price spanning 200x; each prompt has a hidden difficulty that
its words only partly reveal (two of every five cue words are noise). Nothing
in training or calibration knows this generator: it exists to show that the
tiers land on their goals on data the project was not built on.

    python scripts/unseen_outcomes.py OUT.jsonl [--rows 6000] [--seed 3]
"""

import argparse
import math
import random
from pathlib import Path

import orjson

VOCAB = [f"tok{i}" for i in range(400)]


def rows(n: int, seed: int) -> list[dict[str, object]]:
    rnd = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    tasks = [f"task-{t}" for t in range(20)]
    models = {
        f"model-{k:02d}": (
            rnd.uniform(-1.0, 2.5),  # base skill
            {t: rnd.gauss(0, 0.8) for t in tasks},  # skill per task
            rnd.uniform(0.6, 1.6),  # how fast it fails as difficulty grows
            10 ** rnd.uniform(-5.5, -3.2),  # USD per call
        )
        for k in range(11)
    }
    hard_cues, easy_cues = VOCAB[:30], VOCAB[30:60]
    out = []
    for i in range(n):
        task = rnd.choice(tasks)
        difficulty = rnd.gauss(0, 1.2)
        cues = min(abs(round(difficulty * 2)), 30)  # how much the words give away
        words = rnd.choices(VOCAB[60:], k=rnd.randint(8, 60))
        words += rnd.sample(hard_cues if difficulty > 0 else easy_cues, cues)
        words += rnd.sample(hard_cues + easy_cues, 3)  # noise
        rnd.shuffle(words)
        prompt = " ".join(words)
        outcomes = {}
        for name, (base, skill, slope, usd) in models.items():
            p = 1 / (1 + math.exp(-(base + skill[task] - slope * difficulty)))
            outcomes[name] = {
                "score": 1.0 if rnd.random() < p else 0.0,
                "cost_usd": usd * (1 + len(prompt) / 2000),
            }
        out.append(
            {"id": f"unseen.{seed}.{i}", "prompt": prompt, "task": task, "outcomes": outcomes}
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    data = b"".join(orjson.dumps(r) + b"\n" for r in rows(args.rows, args.seed))
    args.out.write_bytes(data)
    print(f"{args.rows} rows written to {args.out}")


if __name__ == "__main__":
    main()
