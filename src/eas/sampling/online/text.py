"""Token ids -> text, one token at a time: each token's text piece and character span.

``IncrementalText.push`` decodes a growing window of ids (the tokens since the last
piece that came out whole, plus the token before them as context) and returns the new
text, so a multi-byte character split over several byte-level tokens comes out with the
token that completes it (the tokens before it get ``""``), and a SentencePiece word
keeps its leading space. The pieces join to the decode of all ids; ``text`` checks that
and falls back to the full decode (``consistent`` is then False and the spans, which
could be off, are not to be trusted).
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"  # what a decoder writes for an incomplete UTF-8 sequence


class IncrementalText:
    """Pieces of text of a token stream, decoded without special tokens."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.pieces: list[str] = []
        self._prefix = 0  # the window starts here (context token(s) already emitted)
        self._read = 0  # ids before this are emitted

    def push(self, token: int) -> str:
        """Add one token; return its text piece ("" while a character is incomplete)."""
        self.ids.append(int(token))
        decode = self.tokenizer.decode
        before = decode(self.ids[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self.ids[self._prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith(REPLACEMENT) and after.startswith(before):
            piece = after[len(before) :]
            self._prefix, self._read = self._read, len(self.ids)
        else:
            piece = ""
        self.pieces.append(piece)
        return piece

    @property
    def joined(self) -> str:
        return "".join(self.pieces)

    def text(self) -> str:
        """The full text (the decode of every id, as ``batch_decode`` gives it)."""
        return self.tokenizer.decode(self.ids, skip_special_tokens=True)

    @property
    def consistent(self) -> bool:
        """Whether the pieces join to the full decode (so the spans are exact)."""
        return self.joined == self.text()

    def spans(self, strip: bool = True) -> list[tuple[int, int]]:
        """``[start, end)`` of every token's piece in the text, after ``str.strip()`` when
        ``strip`` (spans inside the stripped ends shrink to empty at the edge)."""
        text = self.joined
        lead = len(text) - len(text.lstrip()) if strip else 0
        stop = len(text.rstrip()) - lead if strip else len(text)
        out, at = [], 0
        for piece in self.pieces:
            a, b = at - lead, at + len(piece) - lead
            out.append((min(max(a, 0), stop), min(max(b, 0), stop)))
            at += len(piece)
        return out
