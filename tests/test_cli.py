"""The real command in a subprocess on real text, checked the way a user would check it. Where the process
around the command is not what is checked, the same entry point runs in this process (charrnn_here)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from .conftest import CLI, SMALL, charrnn, charrnn_here


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, corpus_file) -> Path:
    """A folder where `charrnn train` has run once, so checkpoints/ holds a run."""
    cwd = tmp_path_factory.mktemp("cli")
    result = charrnn(
        "train", str(corpus_file), *SMALL, "--max-steps", "120", "--eval-every", "60", "--lr", "1e-2", cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    assert "best val loss" in result.stderr and result.stdout == ""
    return cwd


def test_help_does_not_import_torch(tmp_path):
    result = subprocess.run(
        [*CLI[:1], "-X", "importtime", "-m", "charrnn", "sample", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and "--temp" in result.stdout
    assert " torch" not in result.stderr  # torch is imported lazily, so --help answers at once


def test_train_writes_a_run_folder(workdir):
    (run,) = (workdir / "checkpoints").iterdir()
    assert {"best.pt", "last.pt", "metrics.jsonl"} <= {p.name for p in run.iterdir()}


def test_sample_pipes_into_head_and_exits_quietly(workdir):
    proc = subprocess.Popen(
        [*CLI, "sample", "--temp", "0.8", "--length", "20000"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = proc.stdout.read(100)
    proc.stdout.close()  # like `| head -c 100`
    assert proc.wait(timeout=120) == 0
    assert len(head) == 100 and proc.stderr.read() == b""


def test_shell_pipeline(workdir):
    result = subprocess.run(
        f"{sys.executable} -m charrnn sample --length 2000 --seed 1 | head -c 100 | wc -c",
        shell=True,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.stdout.strip() == "100" and result.stderr == ""


def test_sample_to_a_file_is_exactly_the_prime_plus_length(workdir):
    result = charrnn("sample", "--length", "500", "--prime", "ROMEO:", "--seed", "4", cwd=workdir)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("ROMEO:") and len(result.stdout) == 506


def test_stdin_primes_the_sample(workdir):
    result = charrnn("sample", "--length", "50", "--seed", "4", cwd=workdir, stdin="JULIET:")
    assert result.returncode == 0 and result.stdout.startswith("JULIET:") and len(result.stdout) == 57
    same = charrnn_here("sample", "--length", "50", "--seed", "4", "--prime", "JULIET:", cwd=workdir)
    assert same.stdout == result.stdout


def test_jsonl_and_several_samples(workdir):
    import json

    result = charrnn("sample", "-n", "40", "-N", "3", "--seed", "9", "--format", "jsonl", cwd=workdir)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["seed"] for r in records] == [9, 10, 11] and all(len(r["text"]) == 40 for r in records)
    text = charrnn_here(
        "sample", "-n", "40", "-N", "3", "--seed", "9", "--separator", "\\n=====\\n", cwd=workdir
    ).stdout
    assert text.split("\n=====\n") == [r["text"] for r in records]


def test_min_p_from_the_cli(workdir):
    import json

    result = charrnn_here("sample", "-n", "40", "--min-p", "0.1", "--seed", "2", "--format", "jsonl", cwd=workdir)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["settings"]["min_p"] == 0.1 and len(record["text"]) == 40
    bad = charrnn_here("sample", "--min-p", "2", cwd=workdir)
    assert bad.returncode == 1 and "--min-p must be in [0, 1]" in bad.stderr


def test_beam_search_from_the_cli(workdir):
    result = charrnn("sample", "-n", "60", "--beam", "4", "--n-best", "2", "--prime", "The ", cwd=workdir)
    assert result.returncode == 0
    assert result.stdout.count("The ") >= 2 and "hypothesis 2: log-prob" in result.stderr


def test_jsonl_n_best(workdir):
    import json

    result = charrnn_here(
        "sample", "-n", "50", "--beam", "4", "--n-best", "3", "--prime", "The ", "--format", "jsonl", cwd=workdir
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3 and all(len(r["text"]) == 50 and r["prime"] == "The " for r in records)
    assert records[0]["logprob"] >= records[1]["logprob"] >= records[2]["logprob"]
    assert all(r["settings"]["beam"] == 4 and r["chars_per_sec"] > 0 and "seed" in r for r in records)


# The kinds of error, each once through a real process; the rest go through the same entry point in this one.
IN_A_SUBPROCESS = {"no such file", "--batch-size must be positive", "Invalid value", "not a readable checkpoint"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "missing.txt"], "no such file"),
        (["train", "EMPTY"], "empty"),
        (["train", "BINARY"], "looks binary"),
        (["train", "LATIN1"], "not valid UTF-8"),
        (["train", "SHORT", "--batch-size", "64"], "too short"),
        (["train", "CORPUS", "--batch-size", "0"], "--batch-size must be positive"),
        (["train", "CORPUS", "--hidden-size", "-3"], "--hidden-size must be positive"),
        (
            ["train", "CORPUS", "--device", "cuda"]
            if not torch.cuda.is_available()
            else ["train", "CORPUS", "--device", "tpu"],
            "cuda|device",
        ),
        (["train", "CORPUS", "--device", "banana"], "unknown device"),
        (["train", "CORPUS", "--time-budget", "soon"], "duration"),
        (["train", "CORPUS", "--tokenizer", "words"], "--tokenizer must be one of char, byte"),
        (["train", "CORPUS", "--model", "transformer"], "--model must be one of lstm"),
        (["train", "CORPUS", "--batch-size", "lots"], "Invalid value"),
        (["sample", "--temp", "-1"], "--temp"),
        (["sample", "--top-p", "0"], "--top-p"),
        (["sample", "--beam", "0"], "--beam"),
        (["sample", "--length", "-5"], "--length"),
        (["sample", "--checkpoint", "nowhere.pt"], "no such checkpoint"),
        (["sample", "--checkpoint", "EMPTY"], "not a readable checkpoint"),
        (["sample", "--prime", "日本"], "not in the model's vocabulary"),
        (["sample", "--frobnicate"], "No such option"),
    ],
)
def test_bad_input_gets_one_line_and_a_nonzero_status(workdir, tmp_path, args, message):
    files = {
        "EMPTY": b"",
        "BINARY": b"\x7fELF\x00\x00\x01",
        "LATIN1": "caf\xe9\n".encode("latin-1"),
        "SHORT": b"tiny corpus\n",
        "CORPUS": b"a real enough corpus line\n" * 50,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    args = [str(tmp_path / a) if a in files else a for a in args]
    if args[0] == "train":
        args += ["--out", str(tmp_path / "run")]
    run = charrnn if message in IN_A_SUBPROCESS else charrnn_here
    result = run(*args, cwd=workdir)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    # Exactly one error line, the last thing said (progress lines may come before it).
    assert [line for line in lines if "error" in line.lower()] == lines[-1:], result.stderr
    assert lines[-1].startswith("charrnn: error:") and re.search(message, lines[-1]), lines[-1]
    assert not (tmp_path / "run" / "best.pt").exists()


def test_debug_shows_the_traceback(workdir):
    result = charrnn("--debug", "sample", "--temp", "-1", cwd=workdir)
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_last_and_exits_with_its_code(tmp_path, corpus_file, sig, code):
    proc = subprocess.Popen(
        [
            *CLI,
            "train",
            str(corpus_file),
            *SMALL,
            "--max-steps",
            "100000",
            "--eval-every",
            "100000",
            "--out",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 120
    # Wait until it is really training: the first record comes at step 50 (the file may exist before).
    while not (metrics.exists() and metrics.read_text().strip()) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == code
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["cursor"]["step"] >= 50
    resumed = charrnn_here(
        "train", "--resume", str(tmp_path / "run"), "--max-steps", str(ckpt["cursor"]["step"] + 5), cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["cursor"]["step"] == ckpt["cursor"]["step"] + 5


@pytest.mark.slow
def test_kill_9_leaves_loadable_checkpoints(tmp_path, corpus_file):
    proc = subprocess.Popen(
        [
            *CLI,
            "train",
            str(corpus_file),
            *SMALL,
            "--max-steps",
            "100000",
            "--eval-every",
            "5",
            "--out",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    deadline = time.time() + 120
    while not (tmp_path / "run" / "best.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    for _ in range(10):  # kill it at some moment while it keeps rewriting checkpoints
        time.sleep(0.13)
        assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    result = charrnn_here("sample", "--checkpoint", str(tmp_path / "run"), "--length", "20", cwd=tmp_path)
    assert result.returncode == 0 and len(result.stdout) == 20
    torch.load(tmp_path / "run" / "last.pt", weights_only=True)
