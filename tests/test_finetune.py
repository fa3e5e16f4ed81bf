"""Fine-tuning from a run: vocabulary extension, the parent record, and `charrnn train --init-from` end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from charrnn import checkpoint, finetune, trainer
from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.errors import CharRNNError
from charrnn.model import CharRNN
from charrnn.tokenizers import CharTokenizer
from tests.conftest import SMALL_MODEL, charrnn, charrnn_here

NEW_CHARS = "äé€~"


@pytest.fixture(scope="module")
def new_corpus(play_text: str, tmp_path_factory) -> Path:
    """Text of the same kind as the trained run's, with characters the run never saw."""
    text = play_text[200_000:230_000]
    path = tmp_path_factory.mktemp("new") / "new.txt"
    path.write_text(text.replace("e", "é", 50).replace("a", "ä", 50) + "~ costs €\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("tie", [False, True])
def test_extension_keeps_old_rows_and_old_logits(tie: bool):
    torch.manual_seed(0)
    tok = CharTokenizer(list("\n abcdefgh"))
    size = 32 if tie else 16
    model = CharRNN(ModelConfig(vocab_size=tok.vocab_size, hidden_size=32, embed_size=size, tie_weights=tie)).eval()
    grown, bigger = finetune.extend_vocabulary(model, tok, list("zab" + NEW_CHARS))
    grown.eval()
    assert bigger.chars[: tok.vocab_size] == tok.chars and sorted(bigger.chars[tok.vocab_size :]) == sorted(
        "z" + NEW_CHARS
    )
    old, new = model.state_dict(), grown.state_dict()
    v = tok.vocab_size
    for name, tensor in old.items():
        if name in finetune.VOCAB_ROWS:
            assert torch.equal(new[name][:v], tensor)
            assert torch.equal(new[name][v:], tensor.mean(0, keepdim=True).expand_as(new[name][v:]))
        else:
            assert torch.equal(new[name], tensor), name
    ids = torch.tensor([tok.encode("abc hag\nfed cab").tolist()])
    with torch.no_grad():
        before, _ = model(ids)
        after, _ = grown(ids)
    assert after.shape[-1] == bigger.vocab_size
    torch.testing.assert_close(after[..., :v], before, rtol=0, atol=1e-6)
    # A new character's logit starts at the mean of the old ones: unlikely, not ruled out.
    assert (after[..., v:] < before.max(-1, keepdim=True).values).all()


def test_nothing_new_keeps_model_and_tokenizer():
    tok = CharTokenizer(list("ab"))
    model = CharRNN(ModelConfig(vocab_size=2, hidden_size=8, embed_size=4))
    assert finetune.extend_vocabulary(model, tok, ["a"]) == (model, tok)


def test_extended_vocabulary_past_255_ids_encodes_ascii():
    """An ASCII character appended after 300 others gets id 300; the fast ASCII path must not wrap it."""
    tok = CharTokenizer([chr(0x4E00 + i) for i in range(300)]).extended("a\n")
    assert tok.encode("a\na").tolist() == [301, 300, 301]
    assert tok.decode(tok.encode("a\u4e01a")) == "a\u4e01a"


def test_refuses_model_shape_settings():
    with pytest.raises(CharRNNError, match="drop hidden_size, tokenizer"):
        finetune.refuse_fixed({"hidden_size": 64, "dropout": 0.1}, {"tokenizer": "bpe", "val_frac": 0.2})
    finetune.refuse_fixed({"dropout": 0.1}, {"val_frac": 0.2})


@pytest.mark.slow
def test_fine_tune_through_the_cli(trained_run: Path, new_corpus: Path, tmp_path: Path):
    out = tmp_path / "tuned"
    args = ["--max-steps", "20", "--eval-every", "10", "--batch-size", "8", "--seq-len", "32", "--lr", "1e-3"]
    done = charrnn("train", str(new_corpus), "--init-from", str(trained_run), *args, "--precision", "fp32",
                   "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "4 new character(s)" in done.stderr
    parent_ckpt = checkpoint.load(trained_run / "best.pt")
    tuned = checkpoint.load(out / "last.pt")
    assert tuned.cursor.step == 20  # a fresh run, not the parent's steps plus 20
    assert tuned.parent["checkpoint"] == str((trained_run / "best.pt").resolve())
    assert tuned.parent["step"] == parent_ckpt.cursor.step
    assert tuned.parent["corpus_sha256"] == parent_ckpt.corpus_sha256
    old_chars = parent_ckpt.tokenizer["chars"]
    assert tuned.tokenizer["chars"][: len(old_chars)] == old_chars
    assert sorted(tuned.tokenizer["chars"][len(old_chars) :]) == sorted(NEW_CHARS)
    assert tuned.model_config == ModelConfig(**{**vars(parent_ckpt.model_config), "vocab_size": len(old_chars) + 4})
    assert not torch.equal(tuned.model["head.weight"][: len(old_chars)], parent_ckpt.model["head.weight"])
    info = charrnn_here("info", str(out), cwd=tmp_path)
    assert "fine-tuned from" in info.stdout, info.stderr
    sampled = charrnn_here("sample", "-c", str(out), "--prime", "é", "--length", "50", "--seed", "1", cwd=tmp_path)
    assert sampled.returncode == 0 and len(sampled.stdout) == 51, sampled.stderr
    resumed = charrnn_here("train", "--resume", str(out), "--max-steps", "25", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert checkpoint.load(out / "last.pt").parent == tuned.parent  # a resumed fine-tuned run keeps its parent


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--hidden-size", "32"], "--hidden-size"),
        (["--model", "gru"], "--model"),
        (["--tokenizer", "bpe"], "--tokenizer"),
    ],
)
def test_cli_refuses_shape_flags(trained_run: Path, new_corpus: Path, tmp_path: Path, flags: list[str], named: str):
    run = charrnn if named == "--hidden-size" else charrnn_here  # one through a real process
    done = run("train", str(new_corpus), "--init-from", str(trained_run), *flags, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and named in done.stderr and "--init-from" in done.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_cli_missing_run_is_one_line(new_corpus: Path, tmp_path: Path):
    done = charrnn_here("train", str(new_corpus), "--init-from", str(tmp_path / "no-such-run"), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("charrnn: error: --init-from: no such checkpoint") and done.stderr.count("\n") == 1


def test_sentencepiece_run_keeps_its_tokenizer(corpus_file: Path, new_corpus: Path, tmp_path: Path):
    """A BPE run fine-tuned on text with characters it never saw: same pieces, the new ones spelled as bytes."""
    limits = TrainConfig(max_steps=3, eval_every=10, batch_size=4, seq_len=16, precision="fp32")
    data = DataConfig(sources=[str(corpus_file)], tokenizer="bpe", vocab_size=300, cache_dir=str(tmp_path / "cache"))
    trainer.train(data, SMALL_MODEL, limits, out=str(tmp_path / "bpe"))
    new_data = DataConfig(sources=[str(new_corpus)], cache_dir=str(tmp_path / "cache"))  # tokenizer: the default
    trainer.train(new_data, {}, limits, out=str(tmp_path / "tuned"), init_from=str(tmp_path / "bpe"))
    parent, tuned = checkpoint.load(tmp_path / "bpe" / "last.pt"), checkpoint.load(tmp_path / "tuned" / "last.pt")
    assert tuned.tokenizer == parent.tokenizer and tuned.data_config.tokenizer == "bpe"
    assert tuned.model_config == parent.model_config
    _, tok = checkpoint.build_model(tuned)
    assert tok.decode(tok.encode(NEW_CHARS)) == NEW_CHARS  # byte fallback: nothing lost


def test_python_api_fine_tunes(trained_run: Path, new_corpus: Path, tmp_path: Path):
    import charrnn as api

    with pytest.raises(CharRNNError, match="drop layers"):
        api.train(new_corpus, init_from=trained_run, layers=3)
    run = api.train(
        new_corpus, init_from=trained_run, out=tmp_path / "run", max_steps=2, batch_size=4, seq_len=16, dropout=0.3,
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    tuned = checkpoint.load(run.run_dir / "last.pt")
    assert tuned.parent is not None and tuned.model_config.dropout == 0.3
