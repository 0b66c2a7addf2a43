"""``eas score --attention flex|sdpa``: the same numbers, and the kernel recorded with the run."""

import numpy as np
from support import arithmetic_records, read_jsonl, write_jsonl

from eas.cli import main
from eas.storage.parts import read_manifest


def test_score_with_flex_and_sdpa(tiny_dir, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", arithmetic_records(3))
    rows = {}
    for attention in ("sdpa", "flex"):
        out = tmp_path / f"{attention}.jsonl"
        args = ["-q", "score", str(src), "--model", str(tiny_dir), "--trajectory", "--chunk-size", "64"]
        assert main([*args, "--attention", attention, "--out", str(out)]) == 0
        assert read_manifest(out)["backend"]["attention"] == attention
        rows[attention] = read_jsonl(out)
    for f, s in zip(rows["flex"], rows["sdpa"], strict=True):
        np.testing.assert_allclose(f["trajectory"], s["trajectory"], atol=1e-4, rtol=0)
