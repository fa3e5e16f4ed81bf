"""Corpora in other encodings (--encoding): round trips through the streaming reader, byte-order marks,
the file and byte offset of bad bytes for every codec, unknown codecs, and train + sample on cp1252."""

from __future__ import annotations

import codecs
import json
import subprocess

import pytest
import torch

from charrnn import data
from charrnn.config import DataConfig
from charrnn.errors import CharRNNError
from tests import corpora
from tests.conftest import CLI, SMALL, charrnn, charrnn_here

SAMPLES = {
    "latin-1": "Ça va, señor? Größe: 3½ m — no, ½.\n".replace("—", "-"),
    "cp1252": "“Déjà vu”, he said — €5 for the œuvre’s ß.\n",
    "gb18030": "中文文本，包括标点符号。还有𠀀和€。\n",
    "shift_jis": "日本語のテキスト、カタカナとひらがな。\n",
    "utf-16": "Ünïcödé with emoji 🙂 and 中文.\n",
}


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few bytes, so multi-byte characters and bad bytes straddle block boundaries."""
    monkeypatch.setattr(data, "READ_BLOCK", 5)


@pytest.mark.parametrize("codec", SAMPLES)
def test_round_trip(tmp_path, small_blocks, codec):
    text = SAMPLES[codec] * 7
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode(codec))  # utf-16: Python writes a byte-order mark first
    assert "".join(data.read_text([path], encoding=codec)) == text


@pytest.mark.parametrize("bom", [codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
def test_byte_order_marks_are_recognised_and_dropped(tmp_path, small_blocks, bom):
    text = "line one\nzwei – drei\n"
    body = text.encode({codecs.BOM_UTF8: "utf-8", codecs.BOM_UTF16_LE: "utf-16-le"}.get(bom, "utf-16-be"))
    path = tmp_path / "bom.txt"
    path.write_bytes(bom + body)
    assert "".join(data.read_text([path])) == text  # the default, utf-8, sniffs all three
    if bom != codecs.BOM_UTF8:
        assert "".join(data.read_text([path], encoding="utf-16")) == text


@pytest.mark.parametrize(
    ("codec", "bad"),
    [
        ("utf-8", b"\xff"),
        ("gb18030", b"\x81\x20"),
        ("shift_jis", b"\x81\x20"),
        ("cp1252", b"\x81"),
        ("utf-16-le", b"\x00\xdc"),
    ],
)
@pytest.mark.parametrize("blocks", ["small", "whole"])
def test_bad_bytes_name_file_and_offset(tmp_path, monkeypatch, codec, bad, blocks):
    if blocks == "small":
        monkeypatch.setattr(data, "READ_BLOCK", 3)
    good = ("abc\n" + SAMPLES.get(codec, "é")).encode(codec) * 3
    path = tmp_path / "bad.txt"
    path.write_bytes(good + bad + good)
    with pytest.raises(CharRNNError, match=rf"bad.txt is not valid .* \(byte offset {len(good)}\)"):
        "".join(data.read_text([path], encoding=codec))


def test_nul_in_utf16_is_binary(tmp_path):
    path = tmp_path / "nul.txt"
    path.write_bytes("abc\0def".encode("utf-16"))
    with pytest.raises(CharRNNError, match=r"looks binary \(NUL byte at offset 8\)"):
        "".join(data.read_text([path], encoding="utf-16"))


def test_utf16_text_is_not_binary_by_default(tmp_path):
    path = tmp_path / "u16.txt"
    path.write_bytes(SAMPLES["utf-16"].encode("utf-16"))
    config = DataConfig(sources=[str(path)], cache_dir=str(tmp_path / "c"), val_frac=0.3)
    assert "🙂" in data.load_corpus(config).tokenizer.chars


@pytest.mark.parametrize("name", ["nope", "base64", "rot13"])
def test_unknown_codec_is_refused(tmp_path, name):
    with pytest.raises(CharRNNError, match="not a text codec"):
        DataConfig(sources=["x"], encoding=name)


@pytest.mark.parametrize("command", [["train", "X"], ["eval", "X"], ["novelty", "X", "--corpus", "X"], ["sample"]])
def test_unknown_codec_is_one_line_naming_the_flag(tmp_path, command):
    (tmp_path / "X").write_text("hello\n")
    run = charrnn if command[0] == "train" else charrnn_here  # one through a real process
    result = run(*command, "--encoding", "klingon", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "--encoding" in result.stderr and "klingon" in result.stderr


@pytest.mark.slow
def test_cp1252_corpus_end_to_end(tmp_path):
    """Train on a cp1252 file, resume, sample with a cp1252 prime on stdin, evaluate, count novelty (training
    and sampling from stdin's bytes in a subprocess, the rest in-process)."""
    text = corpora.play(40_000).replace("love", "amour’").replace("night", "nuit é")
    corpus = tmp_path / "play-cp1252.txt"
    corpus.write_bytes(text.encode("cp1252"))
    run = str(tmp_path / "run")
    args = ["--encoding", "cp1252", *SMALL, "--max-steps", "60", "--lr", "1e-2", "--warmup-steps", "10"]
    trained = charrnn("train", str(corpus), *args, "--out", run, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["data_config"]["encoding"] == "cp1252"
    resumed = charrnn_here("train", "--resume", run, "--max-steps", "70", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr  # the saved encoding reads the corpus again
    plain = charrnn_here("train", str(corpus), *SMALL, "--max-steps", "1", "--out", str(tmp_path / "r2"), cwd=tmp_path)
    assert plain.returncode != 0 and "not valid UTF-8 (byte offset" in plain.stderr
    prime = "amour’".encode("cp1252")
    sampled = subprocess.run(
        [*CLI, "sample", "-c", run, "--length", "300", "--seed", "1", "--encoding", "cp1252"],
        input=prime,
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert sampled.returncode == 0, sampled.stderr
    out = sampled.stdout.decode("utf-8")
    assert out.startswith("amour’") and len(out) == len("amour’") + 300
    evaluated = charrnn_here("eval", str(corpus), "-c", run, "--encoding", "cp1252", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["skipped_chars"] == 0 and result["chars"] == len(text)
    sample_file = tmp_path / "sample.txt"
    sample_file.write_bytes(text[:500].encode("cp1252"))
    found = charrnn_here(
        "novelty", str(sample_file), "--corpus", str(corpus), "--encoding", "cp1252", "--json", cwd=tmp_path
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["longest_copied"] == 500
