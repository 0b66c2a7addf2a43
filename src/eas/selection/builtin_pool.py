"""The miniature selection setting: arithmetic problems with step-by-step solutions.

Written by the project and correct by construction: every number in a solution is
computed here, so each trace is a verified reasoning trace, like the paper's pool of
verified teacher solutions. Problems vary in kind, in difficulty and in the number of
steps (so in length). ``make_pool`` and ``make_test`` are seeded and disjoint: no test
question appears in the pool.
"""

from __future__ import annotations

import random
from collections.abc import Callable

Problem = tuple[str, list[str], int]  # (question, solution steps, answer)


def _sum_chain(rng: random.Random) -> Problem:
    k = rng.randint(2, 6)
    nums = [rng.randint(2, 60) for _ in range(k)]
    steps, total = [], nums[0]
    for n in nums[1:]:
        steps.append(f"{total} + {n} = {total + n}.")
        total += n
    return f"What is {' + '.join(map(str, nums))}?", steps, total


def _product(rng: random.Random) -> Problem:
    a, b = rng.randint(11, 99), rng.randint(3, 19)
    tens, ones = a // 10 * 10, a % 10
    steps = [
        f"Split {a} into {tens} and {ones}.",
        f"{tens} x {b} = {tens * b}.",
        f"{ones} x {b} = {ones * b}.",
        f"{tens * b} + {ones * b} = {a * b}.",
    ]
    return f"What is {a} times {b}?", steps, a * b


def _shopping(rng: random.Random) -> Problem:
    count, price, extra = rng.randint(2, 9), rng.randint(2, 15), rng.randint(1, 20)
    cost = count * price + extra
    note = next(n for n in (20, 50, 100, 200, 500) if n >= cost)
    steps = [
        f"{count} books at {price} dollars cost {count} x {price} = {count * price} dollars.",
        f"With the {extra} dollar pen the total is {count * price} + {extra} = {cost} dollars.",
        f"The change from {note} dollars is {note} - {cost} = {note - cost} dollars.",
    ]
    question = (
        f"Ana buys {count} books at {price} dollars each and a pen for {extra} dollars. "
        f"She pays with a {note} dollar note. How much change does she get?"
    )
    return question, steps, note - cost


def _average(rng: random.Random) -> Problem:
    k = rng.randint(2, 5)
    mean = rng.randint(20, 40)
    nums = [mean + rng.randint(-4, 4) for _ in range(k - 1)]
    nums.append(mean * k - sum(nums))  # mean minus at most 4 offsets of 4: still >= 4
    steps = [f"The sum is {' + '.join(map(str, nums))} = {sum(nums)}.", f"{sum(nums)} / {k} = {mean}."]
    return f"What is the average of {', '.join(map(str, nums))}?", steps, mean


def _percent(rng: random.Random) -> Problem:
    pct = rng.choice([10, 20, 25, 50, 75])
    base = rng.randint(2, 40) * 4 * 5
    part = base * pct // 100
    steps = [
        f"{pct}% of {base} is {base} x {pct} / 100.",
        f"{base} x {pct} = {base * pct}.",
        f"{base * pct} / 100 = {part}.",
    ]
    return f"What is {pct}% of {base}?", steps, part


def _trip(rng: random.Random) -> Problem:
    legs = rng.randint(2, 4)
    parts, steps, distances = [], [], []
    for i in range(legs):
        speed, hours = rng.randint(3, 12) * 10, rng.randint(1, 4)
        parts.append(f"{speed} km per hour for {hours} hour{'s' if hours > 1 else ''}")
        distances.append(speed * hours)
        steps.append(f"Part {i + 1}: {speed} x {hours} = {speed * hours} km.")
    total = sum(distances)
    steps.append(f"In total {' + '.join(map(str, distances))} = {total} km.")
    return f"A bus drives {', then '.join(parts)}. How far does it drive in total?", steps, total


KINDS: tuple[Callable[[random.Random], Problem], ...] = (_sum_chain, _product, _shopping, _average, _percent, _trip)


def _render(question: str, steps: list[str], answer: int) -> str:
    lines = [f"Step {i + 1}: {s}" for i, s in enumerate(steps)]
    return "\n".join([*lines, f"The answer is \\boxed{{{answer}}}."])


def _problems(n: int, seed: int, exclude: set[str]) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows, seen = [], set(exclude)
    while len(rows) < n:
        question, steps, answer = rng.choice(KINDS)(rng)
        if question in seen:
            continue
        seen.add(question)
        rows.append({"question": question, "response": _render(question, steps, answer), "answer": str(answer)})
    return rows


def make_test(n: int = 40, seed: int = 1) -> list[dict[str, str]]:
    """Test questions: ``id``, ``question``, ``answer`` (the grader's input format)."""
    return [
        {"id": f"test-{i}", "question": p["question"], "answer": p["answer"]}
        for i, p in enumerate(_problems(n, seed, set()))
    ]


def make_pool(n: int = 400, seed: int = 0, test: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Training traces: ``id``, ``prompt``, ``response``, ``answer``; none of ``test``'s questions."""
    exclude = {t["question"] for t in (test if test is not None else make_test())}
    return [
        {"id": f"pool-{i}", "prompt": p["question"], "response": p["response"], "answer": p["answer"]}
        for i, p in enumerate(_problems(n, seed, exclude))
    ]
