import re

from eas.answers import extract_boxed
from eas.selection.builtin_pool import make_pool, make_test

# A whole expression: numbers joined by one kind of operator, then '= result'.
EXPRESSION = re.compile(r"(?<![\d/x+-] )(\d+(?: [+x/-] \d+)+) = (\d+)")


def _check_arithmetic(text: str) -> int:
    """Verify every 'a op b [op c ...] = r' in a solution; count them."""
    checked = 0
    for expr, result in EXPRESSION.findall(text):
        tokens = expr.split(" ")
        value = int(tokens[0])
        for op, num in zip(tokens[1::2], tokens[2::2], strict=True):
            n = int(num)
            if op == "/":
                assert value % n == 0, text
                value //= n
            else:
                value = {"+": value + n, "-": value - n, "x": value * n}[op]
        assert value == int(result), text
        checked += 1
    return checked


def test_pool_is_correct_by_construction_and_varied():
    test = make_test(40, seed=1)
    pool = make_pool(300, seed=0, test=test)
    assert len(pool) == 300 and len({p["id"] for p in pool}) == 300
    assert not {p["prompt"] for p in pool} & {t["question"] for t in test}
    lengths = sorted(len(p["response"]) for p in pool)
    assert lengths[-1] > 2.5 * lengths[0]
    for p in pool:
        assert extract_boxed(p["response"]) == p["answer"]
        assert _check_arithmetic(p["response"]) >= 1


def test_deterministic():
    assert make_pool(50, seed=3) == make_pool(50, seed=3)
    assert make_test(10, seed=4) == make_test(10, seed=4)
    assert make_pool(50, seed=3) != make_pool(50, seed=5)
