from __future__ import annotations

import logging
import math

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
    ids = torch.from_numpy(tok.encode(text)).long()
    with torch.no_grad():
        logits, _ = model.eval()(ids[None, :-1])
    expected = F.cross_entropy(logits[0].double(), ids[1:], reduction="sum").item()
    # Odd cuts, in the text and in the token chunks: the state must carry across both.
    pieces = [text[:1], text[1:700], text[700:701], text[701:2222], text[2222:]]
    streamed = evaluate_text(model, tok, pieces, chunk_tokens=37)
    whole = evaluate_text(model, tok, [text])
    assert streamed.tokens == whole.tokens == len(ids) - 1 and streamed.chars == 3000
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
        evaluate_text(model, tok, ["a"])
