from __future__ import annotations

from charrnn import checkpoint, info
from charrnn.model import num_parameters


def test_describe_a_run_folder(trained_run):
    file, rows = info.describe(trained_run)
    fields = dict(rows)
    ckpt = checkpoint.load(file)
    model, _ = checkpoint.build_model(ckpt)
    assert file == trained_run / "best.pt"
    assert fields["model"].startswith("lstm 2x64 (embedding 32")
    assert fields["parameters"] == f"{num_parameters(model):,}"
    assert fields["tokenizer"] == f"char, vocabulary {ckpt.model_config.vocab_size}"
    assert fields["corpus sha256"] == ckpt.corpus_sha256
    assert fields["steps"].startswith(f"{ckpt.cursor.step:,} ")
    assert fields["characters seen"] == f"{ckpt.cursor.chars:,}"
    assert f"{ckpt.cursor.best_val_loss:.4f} nats/token" in fields["best val loss"]
    assert "command" in fields and "training characters" in fields


def test_table_of_a_checkpoint_file(trained_run):
    table = info.table(trained_run / "last.pt")
    assert table.row_count >= 12 and str(trained_run / "last.pt") in str(table.title)
