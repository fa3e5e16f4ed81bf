"""The HTTP API: generation equal to `charrnn sample` alone and in a shared batch, the limits, bad requests."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest
import uvicorn

from charrnn import checkpoint as ckpts
from charrnn.config import SampleConfig, ServeConfig
from charrnn.sample import generate
from charrnn.serve import GENERATE_FIELDS, create_app, load_models, model_name

LIMITS = {"max_length": 300, "max_beams": 4, "max_samples": 4, "max_concurrent": 24, "max_body_bytes": 4000}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_run: Path):
    """The API on 127.0.0.1 in a thread (fp32 steps: texts compare exactly); its app and base URL."""
    import torch

    cfg = ServeConfig(checkpoints=[str(trained_run)], precision="fp32", port=_free_port(), **LIMITS)
    app = create_app(load_models(cfg.checkpoints, torch.device("cpu"), "fp32"), cfg)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=cfg.port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    yield app, f"http://127.0.0.1:{cfg.port}"
    srv.should_exit = True
    thread.join(10)


def _alone(trained_run: Path, **options) -> list[str]:
    model, tok = ckpts.build_model(ckpts.load(ckpts.resolve(trained_run)))
    return [s.text for s in generate(model, tok, SampleConfig(precision="fp32", **options))]


async def _generate(client: httpx.AsyncClient, url: str, body: dict) -> dict:
    """The streamed pieces joined per sample, and the final event."""
    texts: dict[int, str] = {}
    async with client.stream("POST", url + "/v1/generate", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            event = json.loads(line)
            if "done" in event:
                # Beam search streams its winner only; sampling every sample.
                assert [s["text"] for s in event["samples"][: max(len(texts), 1)]] == [
                    texts.get(i, "") for i in range(max(len(texts), 1))
                ]
                return event
            texts[event["index"]] = texts.get(event["index"], "") + event["text"]
    raise AssertionError("the stream ended without a final event")


def _run_many(url: str, bodies: list[dict]) -> list[dict]:
    async def main():
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(_generate(client, url, b) for b in bodies))

    return asyncio.run(main())


def _options(i: int) -> dict:
    """Greedy for even i, seeded sampling (with a prime, top-k, a penalty) for odd i."""
    if i % 2 == 0:
        return {"length": 200, "temperature": 0}
    return {"length": 200, "temp": 0.9, "seed": i, "prime": "ROMEO:", "top_k": 20, "repetition_penalty": 1.1}


@pytest.mark.parametrize("concurrent", [1, 16])
def test_generation_in_a_shared_batch_equals_sampling_alone(server, trained_run, concurrent):
    app, url = server
    bodies = [_options(i) for i in range(concurrent)] if concurrent > 1 else [_options(1)]
    events = _run_many(url, bodies)
    for body, event in zip(bodies, events, strict=True):
        options = {{"temp": "temperature"}.get(k, k): v for k, v in body.items()}
        assert [s["text"] for s in event["samples"]] == _alone(trained_run, **options)
        assert event["finish_reason"] == "length"
    if concurrent > 1:
        assert app.state.engine.max_rows > 1  # they really shared steps
    assert app.state.slots.used == 0


def test_num_samples_stop_and_beam_equal_sampling_alone(server, trained_run):
    _, url = server
    bodies = [
        {"length": 120, "temperature": 0.8, "seed": 5, "num_samples": 3, "stop": ["\n\n"]},
        {"max_new_tokens": 60, "num_beams": 3, "n_best": 2, "prime": "KING"},
    ]
    sampled, beamed = _run_many(url, bodies)
    assert [s["text"] for s in sampled["samples"]] == _alone(
        trained_run, length=120, temperature=0.8, seed=5, num_samples=3, stop=["\n\n"]
    )
    assert [s["text"] for s in beamed["samples"]] == _alone(trained_run, length=60, beam=3, n_best=2, prime="KING")


def test_models_lists_info_by_name(server, trained_run):
    _, url = server
    listed = httpx.get(url + "/v1/models").json()
    assert list(listed) == ["run"]
    assert listed["run"]["checkpoint"].endswith("best.pt")
    assert "model" in listed["run"]
    schema = httpx.get(url + "/openapi.json").json()
    assert {"temp", "temperature", "num_beams", "model"} <= set(
        schema["paths"]["/v1/generate"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )


def test_accepted_names_come_from_the_sample_options():
    assert {"temperature", "temp", "beam", "num_beams", "length", "max_new_tokens", "top_k", "seed"} <= set(
        GENERATE_FIELDS
    )
    assert not {"precision", "format", "separator", "device", "t", "n"} & set(GENERATE_FIELDS)


def test_model_names(tmp_path):
    assert model_name(Path("checkpoints/shakespeare/best.pt")) == "shakespeare"
    assert model_name(Path("checkpoints/shakespeare/last.pt")) == "shakespeare-last"


def test_a_clash_of_names_gets_a_suffix(trained_run):
    import torch

    served = load_models([str(trained_run), str(trained_run / "best.pt")], torch.device("cpu"), "fp32")
    assert list(served) == ["run", "run-2"]


BAD = [
    ("{", 400, "malformed JSON"),
    ("[1, 2]", 400, "JSON object"),
    ('"text"', 400, "JSON object"),
    ("", 400, "JSON object"),
    ('{"temperature": NaN}', 400, "malformed JSON"),
    ('{"colour": "red"}', 400, "unknown field 'colour'"),
    ('{"precision": "fp16"}', 400, "unknown field 'precision'"),
    ('{"format": "jsonl"}', 400, "unknown field 'format'"),
    ('{"length": "ten"}', 400, "length must be int"),
    ('{"length": 1.5}', 400, "length must be int"),
    ('{"length": true}', 400, "length must be int"),
    ('{"temperature": "hot"}', 400, "temperature must be float"),
    ('{"stop": [1]}', 400, "stop must be a list of strings"),
    ('{"model": 3}', 400, "model must be str"),
    ('{"model": "nope"}', 404, "unknown model 'nope'"),
    ('{"length": 301}', 400, "max_length (300)"),
    ('{"num_samples": 5}', 400, "max_samples (4)"),
    ('{"beam": 5}', 400, "max_beams (4)"),
    ('{"temp": 1, "temperature": 1}', 400, "repeats another name of temperature"),
    ('{"temperature": -1}', 400, "temperature must be 0 (greedy) or positive"),
    ('{"top_p": 0}', 400, "top_p must be in (0, 1]"),
    ('{"beam": 2, "num_samples": 2}', 400, "use n_best"),
    ('{"n_best": 3, "beam": 2}', 400, "n_best must be between 1 and beam"),
    ('{"stop": [""]}', 400, "stop needs a non-empty string"),
    ('{"prime": "\\u4e2d\\u6587"}', 400, "prime"),
    ('{"seed": -1}', 400, "seed must be between"),
    ('{"unknown": "maybe"}', 400, "unknown must be one of"),
    ('{"prime": "' + "x" * 5000 + '"}', 413, "max_body_bytes (4000)"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD, ids=[b[:30] for b, _, _ in BAD])
def test_bad_generate_requests_get_one_line_errors(server, body, status, message):
    _, url = server
    response = httpx.post(url + "/v1/generate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/v1/generate", 405), ("GET", "/nowhere", 404), ("POST", "/v1/models", 405)]
)
def test_wrong_routes_and_methods_answer_json(server, method, path, status):
    _, url = server
    response = httpx.request(method, url + path)
    assert response.status_code == status
    assert "error" in response.json()


def test_too_many_requests_get_429_naming_the_limit(server):
    app, url = server
    slots = app.state.slots
    taken = slots.limit - slots.used
    slots.used += taken  # as if every slot were busy
    try:
        response = httpx.post(url + "/v1/generate", json={"length": 5})
    finally:
        slots.used -= taken
    assert response.status_code == 429
    assert "max_concurrent" in response.json()["error"]


def test_load_with_random_disconnects_leaks_no_slot_and_no_memory(server):
    """Rounds of concurrent requests, some dropped after a few lines; afterwards every slot is free, the engine
    holds no job, and memory allocated by Python stays within a bound from round to round."""
    app, url = server
    rng = random.Random(0)

    async def one(client: httpx.AsyncClient) -> None:
        body = {"length": rng.choice([20, 150]), "temperature": 0.9, "seed": rng.randrange(1000)}
        if rng.random() < 0.2:
            body |= {"beam": 2, "length": 40}
        drop_after = rng.choice([None, 0, 1, 3])
        async with client.stream("POST", url + "/v1/generate", json=body) as response:
            assert response.status_code == 200
            lines = 0
            async for _ in response.aiter_lines():
                lines += 1
                if drop_after is not None and lines > drop_after:
                    break  # leaving the block closes the connection mid-stream

    async def round_():
        async with httpx.AsyncClient(timeout=60) as client:
            await asyncio.gather(*(one(client) for _ in range(20)))

    def settle() -> None:
        for _ in range(200):
            if app.state.slots.used == 0 and app.state.engine.active == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"slots still used: {app.state.slots.used}, jobs: {app.state.engine.active}")

    tracemalloc.start()
    try:
        sizes = []
        for _ in range(5):
            asyncio.run(round_())
            settle()
            sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert sizes[-1] - sizes[1] < 2_000_000, sizes
