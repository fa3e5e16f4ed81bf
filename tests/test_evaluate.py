from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charrnn import checkpoint
from charrnn.errors import CharRNNError
from charrnn.evaluate import bits_per_char, evaluate_text


@pytest.fixture(scope="module")
def model_and_tokenizer(trained_run):
    return checkpoint.build_model(checkpoint.load(trained_run / "best.pt"))


def test_streaming_equals_one_pass_over_the_whole_text(model_and_tokenizer, corpus_file):
    model, tok = model_and_tokenizer
    text = corpus_file.read_text()[:3000]
    assert model.newline_first  # trained on documents: a text is read after a newline, every token predicted
    ids = torch.from_numpy(tok.encode("\n" + text)).long()
    with torch.no_grad():
        logits, _ = model.eval()(ids[None, :-1])
    expected = F.cross_entropy(logits[0].double(), ids[1:], reduction="sum").item()
    # Odd cuts, in the text and in the token chunks: the state must carry across both.
    pieces = [text[:1], text[1:700], text[700:701], text[701:2222], text[2222:]]
    streamed = evaluate_text(model, tok, pieces, chunk_tokens=37)
    whole = evaluate_text(model, tok, [text])
    assert streamed.tokens == whole.tokens == len(ids) - 1 == 3000 and streamed.chars == 3000
    assert streamed.nats == pytest.approx(expected, rel=1e-5) and whole.nats == pytest.approx(expected, rel=1e-5)
    assert whole.bits_per_char == pytest.approx(whole.nats_per_token / math.log(2))  # one char per token
    assert whole.perplexity == pytest.approx(math.exp(whole.nats_per_token))


def test_held_out_loss_is_close_to_the_run_s_validation_loss(model_and_tokenizer, trained_run, corpus_file):
    model, tok = model_and_tokenizer
    text = corpus_file.read_text()
    held_out = text[len(text) - len(text) // 10 :]  # the run's validation split: the last 10%
    result = evaluate_text(model, tok, [held_out])
    cursor = checkpoint.load(trained_run / "best.pt").cursor
    # One evaluator, one formula: only the validation streams' fresh starts differ from one pass.
    assert abs(result.nats_per_token - cursor.best_val_loss) < 0.005
    assert abs(result.bits_per_char - cursor.best_val_bpc) < 0.01


def test_bits_per_char_counts_every_token_of_the_text():
    assert bits_per_char(math.log(2), tokens=10, chars=10) == pytest.approx(1.0)  # char model: nats / ln 2
    assert bits_per_char(math.log(2), tokens=5, chars=10) == pytest.approx(0.5)  # two characters a token


def test_unknown_characters_are_skipped_with_a_warning_or_refused(model_and_tokenizer, caplog):
    model, tok = model_and_tokenizer
    with caplog.at_level(logging.WARNING, logger="charrnn"):
        result = evaluate_text(model, tok, ["To be, or not 日本 to be"])
    assert result.skipped == 2 and result.chars == 20 and "left out 2 character" in caplog.text
    with pytest.raises(CharRNNError, match="not in the model's vocabulary"):
        evaluate_text(model, tok, ["日本"], unknown="error")
    with pytest.raises(CharRNNError, match="too short"):
        evaluate_text(model, tok, ["日"])  # nothing the model knows: no token to predict


def test_validation_reads_documents_as_eval_reads_files():
    """Training's validation (documents in streams, reset where each starts) and `charrnn eval` (each
    file from the reset state after a newline) give the same sum for a model trained on documents."""
    from charrnn.config import ModelConfig
    from charrnn.data import Split
    from charrnn.evaluate import evaluate_documents, evaluate_split
    from charrnn.model import CharRNN
    from charrnn.tokenizers import CharTokenizer

    texts = ["= One =\nthe king loves the queen.\n" * 3, "= Two =\nno fool.\n", "= Three =\n" + "a vow breaks.\n" * 9]
    tok = CharTokenizer(sorted(set("".join(texts))))
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=tok.vocab_size, hidden_size=16, embed_size=8, start="newline")).eval()
    ids = tok.encode("".join(texts))
    starts = np.cumsum([0] + [len(t) for t in texts[:-1]])
    split = Split(ids, len(ids), starts)
    streams = evaluate_split(model, split, tok, "text", 2, 8, torch.device("cpu"))
    files = evaluate_documents(model, tok, [(True, t) for t in texts])
    assert streams.tokens == files.tokens == len(ids)  # every token predicted, the first from a newline
    assert streams.nats == pytest.approx(files.nats, rel=1e-5)


def test_cold_start_loss_reads_each_opening_from_the_reset_state(model_and_tokenizer):
    from charrnn.evaluate import cold_start_loss, opening, piece_chars

    model, tok = model_and_tokenizer
    nl = int(tok.encode("\n")[0])
    texts = ["ROMEO:\nThe gentle king loves the night.", "NURSE:\nA vow"]
    openings = [opening(tok.encode(t), piece_chars(tok), 20) for t in texts]
    assert [len(o) for o in openings] == [20, len(texts[1])]  # 20 characters, or all there is
    nats = []
    for o in openings:
        x = torch.tensor([[nl, *o[:-1].tolist()]])
        with torch.no_grad():
            logits, _ = model.eval()(x, model.init_state(1))
        nats.append(F.cross_entropy(logits[0].double(), torch.from_numpy(o).long(), reduction="sum").item())
    loss = cold_start_loss(model, openings, nl, torch.device("cpu"))
    assert loss == pytest.approx(sum(nats) / sum(len(o) for o in openings), rel=1e-5)


def test_cold_starts_are_document_starts_or_line_starts():
    from charrnn.evaluate import cold_starts

    ids = np.array([5, 5, 0, 6, 6, 0, 7, 7, 0, 8, 8, 0] * 10)
    assert cold_starts(ids, np.array([0, 30, 60]), newline=0).tolist() == [0, 30, 60]
    found = cold_starts(ids, np.array([], dtype=np.int64), newline=0, rows=4)
    assert len(found) == 4 and all(ids[s - 1] == 0 for s in found.tolist())
