"""Two seeded pools of synthetic reasoning traces for bench_amortised.py, in two styles.

* ``arithmetic``: multi-step sums, products and differences written as "Step k: ...",
  with occasional slips and corrections and a varied number of steps (about 80 to 1,400
  response tokens), ending in ``\\boxed{...}``;
* ``shift``: other problem kinds (ages, rates, geometry, calendars), written as prose
  without step labels, with long digressions (asides, restated questions, doubts) and
  often short, ending in ``\\boxed{...}``.

The traces are written, not sampled: they stand in for a pool of one style and a pool of
another, which is what the benchmark needs (a head calibrated on one style, tested on
held-out traces of that style and on the other).
"""

from __future__ import annotations

import random

ARITH_PROMPTS = (
    "Compute the total of the numbers below, step by step, and box the final answer.",
    "A shop keeps a running tally. Work out the final count and put it in \\boxed{}.",
    "Add up the quantities, checking each partial sum, and give the result in a box.",
)
ARITH_STEPS = (
    "Step {k}: {a} + {b} = {c}.",
    "Step {k}: we add {b} to {a} and get {c}.",
    "Step {k}: {a} plus {b} makes {c}, so the running total is {c}.",
    "Step {k}: take {a}, multiply by 1 and add {b}: {c}.",
)
ARITH_SLIPS = (
    "Step {k}: {a} + {b} = {w}. Wait, that is wrong; {a} + {b} is {c}.",
    "Step {k}: {a} + {b} = {w}? Let me recheck: {a} + {b} = {c}. Yes, {c}.",
    "Hmm, I am not sure about the last sum. Recomputing: {a} + {b} = {c}.",
)


def arithmetic_trace(rng: random.Random, i: int) -> dict:
    steps = rng.choice([3, 5, 8, 12, 18, 25, 35, 45, 60])
    slip_rate = rng.choice([0.0, 0.05, 0.15, 0.3])
    total = rng.randint(1, 50)
    lines = [f"We start from {total}."]
    for k in range(1, steps + 1):
        b = rng.randint(1, 99)
        c = total + b
        template = rng.choice(ARITH_SLIPS) if rng.random() < slip_rate else rng.choice(ARITH_STEPS)
        lines.append(template.format(k=k, a=total, b=b, c=c, w=c + rng.choice([-10, -1, 1, 2, 10])))
        total = c
    lines.append(f"So the final answer is \\boxed{{{total}}}.")
    prompt = rng.choice(ARITH_PROMPTS) + f" (problem {i})"
    return {"id": f"a{i}", "prompt": prompt, "response": " ".join(lines), "answer": str(total)}


SHIFT_KINDS = (
    ("Anna is {x} years older than Ben, who is {y}. How old is Anna?", lambda x, y: x + y),
    ("A train covers {x} km every hour for {y} hours. How far does it go, in km?", lambda x, y: x * y),
    ("A rectangle is {x} cm by {y} cm. What is its area in square centimetres?", lambda x, y: x * y),
    ("A meeting starts on day {x} of the month and lasts {y} days. On which day does it end?", lambda x, y: x + y - 1),
    ("{x} apples are shared equally among {y} children; how many whole apples are left over?", lambda x, y: x % y),
)
ASIDES = (
    "Before going on, it is worth saying that problems like this often hide a trick in the wording.",
    "I once saw a similar question where the numbers were swapped, which changed everything.",
    "Let me restate the question in my own words to be sure I read it right.",
    "There might be an ambiguity here, but the most natural reading is the one I use.",
    "Actually, I should double-check whether the units matter; they do not change the arithmetic.",
    "It is tempting to guess, but a careful calculation is safer.",
    "Perhaps I misread something. Reading it again, no, the numbers are as I said.",
)


def shift_trace(rng: random.Random, i: int) -> dict:
    question, solve = rng.choice(SHIFT_KINDS)
    x, y = rng.randint(2, 60), rng.randint(2, 12)
    answer = solve(x, y)
    parts = [f"The question gives the numbers {x} and {y}."]
    for _ in range(rng.choice([0, 1, 2, 4, 8, 14])):
        parts.append(rng.choice(ASIDES))
    if rng.random() < 0.4:
        parts.append(f"At first I thought the answer was {answer + rng.randint(1, 5)}, but that was careless.")
    parts.append(f"Putting it together, the result is {answer}, so I answer \\boxed{{{answer}}}.")
    return {"id": f"s{i}", "prompt": question.format(x=x, y=y), "response": " ".join(parts), "answer": str(answer)}


def make_pool(style: str, n: int, seed: int = 0) -> list[dict]:
    """``n`` records of one style (``arithmetic`` or ``shift``), seeded."""
    rng = random.Random(f"{style}-{seed}")
    make = {"arithmetic": arithmetic_trace, "shift": shift_trace}[style]
    return [make(rng, i) for i in range(n)]
