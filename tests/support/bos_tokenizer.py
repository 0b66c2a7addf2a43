"""An in-process Llama-3-like tokenizer (no download) that adds a BOS twice if let.

Its chat template writes ``{{ bos_token }}`` *and* plain tokenization adds a BOS by
default (a ``TemplateProcessing`` post-processor, as Llama-3's and Gemma's tokenizers),
while ``add_bos_token`` is not set: like Gemma's, the attribute does not tell. Re-tokenizing
the rendered template with ``add_special_tokens=True`` gives two BOS tokens.
"""

from __future__ import annotations

from typing import Any

SPECIAL = [
    "<|pad|>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|unk|>",
]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def make_bos_tokenizer() -> Any:
    """Byte-level BPE without merges (one token per byte, every string encodes) + Llama-3 specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|unk|>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    bos = "<|begin_of_text|>"
    tk.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token=bos,
        eos_token="<|eot_id|>",
        pad_token="<|pad|>",
        unk_token="<|unk|>",
        additional_special_tokens=["<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok
