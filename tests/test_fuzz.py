"""Random arguments and random bytes thrown at the CLI: the user never sees a traceback."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charrnn import options
from tests.conftest import charrnn_here

NUMBERS = st.sampled_from(["-3", "0", "0.5", "1", "2", "7", "1e9", "nan", "inf", "x", "", "--"])


def _value_options(command: str, skip: tuple[str, ...]) -> list[str]:
    """Every option of a command that takes a value, read from the declarations (charrnn.options)."""
    return [options.flags(f)[0] for f in options.option_fields(command) if f.type != "bool" and f.name not in skip]


# Train: all but the paths it would write to and the run options (--nproc starts processes).
TRAIN_OPTIONS = [o for o in _value_options("train", ("val_file", "cache_dir", "out", "resume")) if o != "--nproc"]
SAMPLE_OPTIONS = _value_options("sample", ("checkpoint",))
WORDS = st.sampled_from(
    [
        "lstm",
        "gru",
        "rnn-relu",
        "bpe",
        "byte",
        "char",
        "cpu",
        "cuda",
        "fp32",
        "bf16",
        "replace",
        "jsonl",
        "fp16",
        "auto",
    ]
)


def run_cli(argv: list[str]) -> tuple[int, str]:
    result = charrnn_here(*argv, cwd=Path.cwd())
    return result.returncode, result.stderr


def check(code: int, stderr: str) -> None:
    assert "Traceback" not in stderr
    if code not in (0, None):
        errors = [line for line in stderr.splitlines() if line.startswith("charrnn: error:")]
        assert len(errors) == 1, stderr


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    corpus=st.one_of(
        st.binary(max_size=3000), st.text(max_size=3000).map(lambda t: t.encode("utf-8", "surrogatepass"))
    ),
    options=st.lists(st.tuples(st.sampled_from(TRAIN_OPTIONS), st.one_of(NUMBERS, WORDS)), max_size=4),
)
def test_train_never_shows_a_traceback(corpus, options):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "corpus.txt")
        with open(path, "wb") as f:
            f.write(corpus)
        argv = [
            "train",
            path,
            "--out",
            os.path.join(tmp, "run"),
            "--cache-dir",
            os.path.join(tmp, "cache"),
            "--hidden-size",
            "8",
            "--embed-size",
            "4",
            "--batch-size",
            "2",
            "--seq-len",
            "4",
            "--quiet",
        ]
        for name, value in options:
            argv += [name, value]
        argv += ["--max-steps", "2", "--time-budget", "3s"]  # keep every run tiny, whatever was drawn
        check(*run_cli(argv))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    options=st.lists(
        st.tuples(st.sampled_from(SAMPLE_OPTIONS), st.one_of(NUMBERS, WORDS, st.text(max_size=8))), max_size=4
    )
)
def test_sample_never_shows_a_traceback(trained_run, options):
    argv = ["sample", "--checkpoint", str(trained_run)]
    for name, value in options:
        argv += [name, value]
    argv += ["--length", "5", "--beam", "2"] if any(n == "--n-best" for n, _ in options) else ["--length", "5"]
    check(*run_cli(argv))
