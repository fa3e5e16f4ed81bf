"""Every option recorded from a0cd22a still exists with the same names and the same effective default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from charrnn import options
from charrnn.cli import app
from charrnn.config import DataConfig, EvalConfig, ModelConfig, SampleConfig
from charrnn.errors import CharRNNError
from tests.options_dump import options as dumped_options

RECORDED = json.loads((Path(__file__).parent / "data" / "cli_options.json").read_text())
NOW = dumped_options()


@pytest.mark.parametrize("command,flag", [(c, f) for c, opts in RECORDED.items() for f in opts])
def test_recorded_option_is_unchanged(command: str, flag: str) -> None:
    assert command in NOW, f"command {command} is gone"
    assert flag in NOW[command], f"{command} {flag} is gone"
    assert NOW[command][flag] == RECORDED[command][flag]


def test_the_options_reference_is_the_generated_one():
    docs = (Path(__file__).parent.parent / "docs" / "options.md").read_text()
    assert docs == options.reference(), "run: python -m charrnn.options > docs/options.md"
    assert all(f"## `charrnn {c}`" in docs for c in options.COMMANDS if options.option_fields(c))


def test_help_shows_each_default_from_its_field():
    train = typer.main.get_command(app).commands["train"]
    helps = {p.name: p.help for p in train.params}
    assert helps["hidden_size"].endswith(f"[default: {ModelConfig.__dataclass_fields__['hidden_size'].default}]")
    assert helps["cell"].endswith("[default: lstm]") and helps["max_steps"].endswith("[default: none]")


def test_library_errors_name_the_field_and_the_cli_shows_the_flag():
    with pytest.raises(CharRNNError) as caught:
        SampleConfig(temperature=-1, n_best=3)
    assert str(caught.value).startswith("temperature must") and caught.value.fields == ("temperature",)
    assert options.render(str(caught.value), caught.value.fields).startswith("--temp must")
    with pytest.raises(CharRNNError) as caught:
        ModelConfig(vocab_size=10, cell="transformer")
    assert options.render(str(caught.value), caught.value.fields).startswith("--model must be one of lstm, gru")
    with pytest.raises(CharRNNError) as caught:
        EvalConfig(files=["x"], unknown="maybe")
    assert options.render(str(caught.value), caught.value.fields) == "--unknown must be one of skip, error; got 'maybe'"
    # Only whole names are replaced: "beam search" keeps its words when the field named is n_best.
    assert options.render("beam search: n_best too big", ("n_best",)) == "beam search: --n-best too big"


def test_options_build_only_from_the_fields_a_command_offers():
    # --vocab-size is DataConfig's; ModelConfig.vocab_size is set by the tokenizer, never from the CLI.
    parsed = options.Options(vocab_size=500, hidden_size=None, cell="gru")
    assert parsed.given(ModelConfig) == {"cell": "gru"}
    assert parsed.given(DataConfig) == {"vocab_size": 500}
