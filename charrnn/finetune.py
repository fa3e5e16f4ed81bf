"""Fine-tuning: a new run that starts from another run's weights (`charrnn train NEW --init-from RUN`).

The model settings and the tokenizer come from the parent checkpoint; the run itself is fresh (step 0, a
new optimizer and schedule). A character vocabulary that lacks characters of the new corpus is extended:
the old characters keep their ids and rows, the new ones are appended, and their embedding and output
rows start as the mean of the existing rows. Why the mean (Hewitt 2021, "Initializing New Word
Embeddings for Pretrained Language Models"): a new input row then looks like an average character, so
the hidden state stays where the network was trained; a new output row gives logits near the average
logit, far below the likely ones, so the fine-tuned model starts out predicting almost exactly as its
parent did (the logits of the old characters are unchanged) and learns the new characters from there.
Small random rows would give each new character an arbitrary direction, and zero output rows a logit of
0, which may be far above the parent's.

Byte and SentencePiece tokenizers are kept as they are: bytes cover every text, and charrnn trains
SentencePiece with byte fallback, so a character outside its pieces is spelled as its UTF-8 bytes. (A
SentencePiece model without byte pieces would map such characters to <unk>, which decodes to nothing.)
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from charrnn import checkpoint, data
from charrnn.config import DataConfig
from charrnn.data import Corpus, load_corpus
from charrnn.errors import CharRNNError
from charrnn.model import CharRNN
from charrnn.tokenizers import CharTokenizer, SentencePieceTokenizer, Tokenizer

log = logging.getLogger("charrnn")

# Settings the parent fixes: the shape of its weights and what they were initialised with. Dropout
# only acts while training, so a fine-tuning run may change it.
MODEL_FIXED = ("cell", "hidden_size", "embed_size", "layers", "tie_weights", "forget_bias")
DATA_FIXED = ("tokenizer", "vocab_size")
# The model's rows per token: the embedding's and the output layer's.
VOCAB_ROWS = ("embed.weight", "head.weight", "head.bias")


@dataclass
class Parent:
    """Where a fine-tuned run started: recorded in its checkpoints (Checkpoint.parent)."""

    checkpoint: str
    step: int | None
    corpus: list[str] | None
    corpus_sha256: str | None
    vocab_size: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def refuse_fixed(model_given: dict[str, Any], data_given: dict[str, Any]) -> None:
    """The settings that come from the parent may not be given as well."""
    clash = [name for name in MODEL_FIXED if name in model_given] + [n for n in DATA_FIXED if n in data_given]
    if clash:
        raise CharRNNError(
            f"init_from starts from the run's own model and vocabulary; drop {', '.join(clash)}",
            "init_from",
            *clash,
        )


def extend_rows(state: dict[str, torch.Tensor], new_rows: int) -> dict[str, torch.Tensor]:
    """The model's state_dict with `new_rows` rows appended to each per-token tensor, each the mean of
    the existing rows; every other tensor, and every old row, as it was."""
    out = dict(state)
    for name in VOCAB_ROWS:
        old = state[name]
        out[name] = torch.cat([old, old.mean(0, keepdim=True).expand(new_rows, *old.shape[1:])])
    return out


def extend_vocabulary(model: CharRNN, tokenizer: CharTokenizer, chars: list[str]) -> tuple[CharRNN, CharTokenizer]:
    """The tokenizer with the characters it lacks of `chars`, and the model with rows for them."""
    bigger = tokenizer.extended(chars)
    added = bigger.vocab_size - tokenizer.vocab_size
    if not added:
        return model, tokenizer
    shown = "".join(bigger.chars[tokenizer.vocab_size :][:20])
    log.info("%d new character(s) added to the vocabulary of %d: %r", added, tokenizer.vocab_size, shown)
    grown = CharRNN(replace(model.cfg, vocab_size=bigger.vocab_size))
    grown.load_state_dict(extend_rows(model.state_dict(), added))
    return grown, bigger


def _lacks_byte_fallback(tokenizer: Tokenizer) -> bool:
    if not isinstance(tokenizer, SentencePieceTokenizer):
        return False
    return not any(tokenizer.sp.is_byte(i) for i in range(tokenizer.vocab_size))


def start(path: str, data_cfg: DataConfig, model_given: dict[str, Any]) -> tuple[CharRNN, Corpus, DataConfig, Parent]:
    """The parent's model (its vocabulary extended where the new corpus needs it), the new corpus
    tokenized with its tokenizer, the run's data settings and the record of the parent.

    `path`: a run folder (its best.pt) or a checkpoint file. `model_given` may hold dropout only."""
    refuse_fixed(model_given, {})
    try:
        ckpt_path = checkpoint.resolve(path)
    except CharRNNError as e:
        raise CharRNNError(f"init_from: {e}", "init_from") from None
    ckpt = checkpoint.load(ckpt_path)
    model, tokenizer = checkpoint.build_model(ckpt)
    parent_data = ckpt.data_config
    data_cfg = replace(
        data_cfg,
        tokenizer=tokenizer.kind,
        vocab_size=parent_data.vocab_size if parent_data is not None else tokenizer.vocab_size,
    )
    # One resolution of the sources: stdin can be read once only.
    files = data.resolve_sources(data_cfg.sources, Path(data_cfg.cache_dir))
    if isinstance(tokenizer, CharTokenizer):
        found = data.scan(files, data_cfg.encoding_errors, "char")
        model, tokenizer = extend_vocabulary(model, tokenizer, found.chars.chars())
    elif _lacks_byte_fallback(tokenizer):
        log.warning("%s's SentencePiece model has no byte fallback: characters outside it become <unk>", ckpt_path)
    if "dropout" in model_given and model_given["dropout"] != model.cfg.dropout:
        rebuilt = CharRNN(replace(model.cfg, dropout=model_given["dropout"]))
        rebuilt.load_state_dict(model.state_dict())
        model = rebuilt
    corpus = load_corpus(replace(data_cfg, sources=[str(p) for p in files]), tokenizer)
    parent = Parent(
        checkpoint=str(ckpt_path.resolve()),
        step=ckpt.cursor.step if ckpt.cursor is not None else None,
        corpus=parent_data.sources if parent_data is not None else None,
        corpus_sha256=ckpt.corpus_sha256,
        vocab_size=ckpt.model_config.vocab_size,
    )
    log.info("fine-tuning %s (step %s)", parent.checkpoint, parent.step if parent.step is not None else "?")
    return model, corpus, data_cfg, parent
