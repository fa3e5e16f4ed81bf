"""`charrnn serve`: each model loaded once, an HTTP API for many users at once.

Stack: Starlette on uvicorn. Starlette is a small, well-kept ASGI toolkit with streaming responses and a
test client; the request options come from SampleConfig's declarations, so a schema layer (FastAPI/pydantic)
would only repeat them. uvicorn runs on uvloop and httptools where they are installed (dependencies of
charrnn): they leave more of a small machine's CPU to the models. All are imported here, and this module
only by `charrnn serve`, so no other command pays for them.

Generation streams NDJSON: one JSON object a line, {"index": i, "text": "..."} as text is final, then
{"done": true, "finish_reason": ..., "samples": [...]}; an error mid-stream is {"error": "..."}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from charrnn import checkpoint as ckpts
from charrnn.config import SampleConfig, ServeConfig
from charrnn.engine import Engine, Job
from charrnn.errors import CharRNNError
from charrnn.info import describe
from charrnn.model import CharRNN
from charrnn.options import flags
from charrnn.sample import prime_ids
from charrnn.tokenizers import Tokenizer

log = logging.getLogger("charrnn")

# SampleConfig fields a request may not set: the server's settings.
SERVER_SETTINGS = ("precision",)


class ApiError(Exception):
    """A request the server refuses: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class ServedModel:
    name: str
    model: CharRNN
    tokenizer: Tokenizer
    info: dict[str, str]
    device: torch.device
    precision: str


# -- loading and naming ------------------------------------------------------------------------------


def model_name(file: Path) -> str:
    """A run's best.pt is named by its folder; any other checkpoint file by folder-stem (run-last, run-step500)."""
    return file.parent.name if file.name == "best.pt" else f"{file.parent.name}-{file.stem}"


def load_models(paths: Sequence[str] | None, device: torch.device, precision: str) -> dict[str, ServedModel]:
    """Each checkpoint once, named by model_name; a name already taken gets -2, -3, ... in the order given."""
    models: dict[str, ServedModel] = {}
    for path in paths or [None]:
        file, rows = describe(ckpts.resolve(path))
        model, tokenizer = ckpts.build_model(ckpts.load(file))
        name, n = model_name(file), 2
        while name in models:
            name, n = f"{model_name(file)}-{n}", n + 1
        served = ServedModel(name, model.to(device).eval(), tokenizer, dict(rows), device, precision)
        models[name] = served
        log.info("serving %s as %r", file, name)
    return models


# -- reading requests ----------------------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: Request, accepted: Mapping[str, str]) -> dict[str, Any]:
    """The request's JSON object, its fields checked against `accepted` (name -> type as declared, e.g.
    "int | None"); the body-size limit enforced. Anything else is an ApiError with a one-line message."""
    limit = request.app.state.cfg.max_body_bytes
    if int(request.headers.get("content-length") or 0) > limit:
        raise ApiError(413, f"request body exceeds max_body_bytes ({limit})")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body exceeds max_body_bytes ({limit})")
    try:
        data = json.loads(body or b"null", parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise ApiError(400, f"malformed JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    unknown = sorted(set(data) - set(accepted))
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}; accepted: {', '.join(sorted(accepted))}")
    return {name: _typed(name, value, accepted[name]) for name, value in data.items()}


def _typed(name: str, value: Any, kind: str) -> Any:
    """value if it has the declared type (ints count as floats; a lone string as a list of one)."""
    for k in (k.strip() for k in kind.split("|")):
        if k == "None" and value is None:
            return None
        if k in ("int", "float") and isinstance(value, int | float) and not isinstance(value, bool):
            if k == "float":
                return float(value)
            if isinstance(value, int):
                return value
        if (k == "str" and isinstance(value, str)) or (k == "bool" and isinstance(value, bool)):
            return value
        if k == "list[str]" and isinstance(value, str):
            return [value]
        if k == "list[str]" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    raise ApiError(400, f"{name} must be {kind.replace('list[str]', 'a list of strings')}, got {json.dumps(value)}")


def sample_fields() -> dict[str, tuple[str, str]]:
    """Every name a generate request accepts -> (SampleConfig field, its type): the field name and each
    long flag of `charrnn sample` with _ for - (temperature, temp; beam, num_beams; length, max_new_tokens)."""
    names = {}
    for f in fields(SampleConfig):
        if f.name in SERVER_SETTINGS:
            continue
        aliases = [f.name] + [n[2:].replace("-", "_") for n in flags(f) if n.startswith("--")]
        for alias in aliases:
            names[alias] = (f.name, str(f.type))
    return names


SAMPLE_FIELDS = sample_fields()
GENERATE_FIELDS = {alias: kind for alias, (_, kind) in SAMPLE_FIELDS.items()} | {"model": "str | None"}


def _sample_config(body: dict[str, Any], cfg: ServeConfig, precision: str) -> SampleConfig:
    values: dict[str, Any] = {}
    for alias, value in body.items():
        name = SAMPLE_FIELDS[alias][0]
        if name in values:
            raise ApiError(400, f"{alias} repeats another name of {name}")
        values[name] = value
    for name, limit, label in (
        ("length", cfg.max_length, "max_length"),
        ("num_samples", cfg.max_samples, "max_samples"),
        ("beam", cfg.max_beams, "max_beams"),
    ):
        if (values.get(name) or 0) > limit:
            raise ApiError(400, f"{name} {values[name]} exceeds the server's limit {label} ({limit})")
    if len(values.get("prime", "")) > cfg.max_text:
        raise ApiError(400, f"prime exceeds the server's limit max_text ({cfg.max_text} characters)")
    seed = values.get("seed")
    if seed is not None and not 0 <= seed < 2**63 - cfg.max_samples:
        raise ApiError(400, f"seed must be between 0 and 2**63 - {cfg.max_samples + 1}, got {seed}")
    try:
        return SampleConfig(**values, precision=precision)
    except CharRNNError as e:
        raise ApiError(400, str(e)) from None


# -- slots ---------------------------------------------------------------------------------------------


class Slots:
    """Requests in progress, at most max_concurrent."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self.used >= self.limit:
                raise ApiError(429, f"the server is at its limit max_concurrent ({self.limit} requests); retry later")
            self.used += 1

    def release_once(self):
        """A function that gives the slot back the first time it is called."""
        done = threading.Event()

        def release() -> None:
            with self._lock:
                if not done.is_set():
                    done.set()
                    self.used -= 1

        return release


class EventStream:
    """One request's events, from the engine's thread to its response. The response is woken once for
    all the events that came while it was busy, and takes them with each sample's text merged into one
    event: a loaded server sends fewer, longer lines rather than falling behind one line a character."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._lock = loop, threading.Lock()
        self._events: list[dict] = []
        self._ready = asyncio.Event()
        self._waiting = False  # the response waits for events: the next put wakes it

    def put(self, event: dict) -> bool:
        """Called from any thread; False once the event loop has closed."""
        with self._lock:
            self._events.append(event)
            wake, self._waiting = self._waiting, False
        if wake:
            try:
                self._loop.call_soon_threadsafe(self._ready.set)
            except RuntimeError:
                return False
        return True

    async def take(self) -> list[dict]:
        """The events since the last take (at least one), text events merged per sample."""
        while True:
            with self._lock:
                if self._events:
                    events, self._events = self._events, []
                    return merge_text(events)
                self._waiting = True
                self._ready.clear()
            await self._ready.wait()


def merge_text(events: list[dict]) -> list[dict]:
    """Consecutive text events ({"index", "text"}) as one per sample, in order of first appearance; any
    other event (done, error) ends the run it follows."""
    out: list[dict] = []
    texts: dict[int, dict] = {}
    for event in events:
        if event.keys() == {"index", "text"}:
            if event["index"] in texts:
                texts[event["index"]]["text"] += event["text"]
            else:
                texts[event["index"]] = dict(event)
                out.append(texts[event["index"]])
        else:
            out.append(event)
            texts = {}
    return out


# -- routes --------------------------------------------------------------------------------------------


def served_model(request: Request, name: str | None) -> ServedModel:
    """The model a request names; with one model served, the name may be left out."""
    models: dict[str, ServedModel] = request.app.state.models
    if name is None:
        if len(models) == 1:
            return next(iter(models.values()))
        raise ApiError(400, f"name a model: one of {', '.join(models)}")
    if name not in models:
        raise ApiError(404, f"unknown model {name!r}; served: {', '.join(models)}")
    return models[name]


async def generate(request: Request) -> Response:
    """POST /v1/generate: the options of `charrnn sample`, streamed as NDJSON."""
    body = await read_json(request, GENERATE_FIELDS)
    served = served_model(request, body.pop("model", None))
    cfg = _sample_config(body, request.app.state.cfg, served.precision)
    if cfg.seed is None:
        cfg.seed = int(torch.randint(2**31 - 1, ()).item())
    generators = [torch.Generator().manual_seed(cfg.seed + i) for i in range(cfg.num_samples)]
    try:
        prime = prime_ids(served.tokenizer, cfg, generators[0], served.model.newline_first)
    except CharRNNError as e:
        raise ApiError(400, str(e)) from None
    slots: Slots = request.app.state.slots
    slots.take()
    stream = EventStream(asyncio.get_running_loop())

    def emit(event: dict) -> None:
        if not stream.put(event):  # the event loop has closed: nobody is listening
            job.cancelled.set()

    job = Job(served.model, served.tokenizer, cfg, cfg.seed, generators, prime, emit, slots.release_once())
    request.app.state.engine.submit(job)

    interval = request.app.state.cfg.stream_interval

    async def lines():
        try:
            while True:
                events = await stream.take()
                yield "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events)
                if any("done" in event or "error" in event for event in events):
                    break
                await asyncio.sleep(interval)  # a line per interval, not per token: less work on both ends
        finally:  # finished, or the client went away: either way the engine lets the job go
            job.cancelled.set()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


TEXT_FIELDS = {"model": "str | None", "text": "str"}
SCORE_FIELDS = TEXT_FIELDS | {"top_k": "int"}
ACTIVATIONS_FIELDS = TEXT_FIELDS | {"layer": "int", "kind": "str"}
MAX_TOP_K = 50


async def text_request(request: Request, accepted: Mapping[str, str]) -> tuple[dict[str, Any], ServedModel]:
    """The request's fields and its model; the text present and within max_text."""
    body = await read_json(request, accepted)
    if "text" not in body:
        raise ApiError(400, "text is missing")
    limit = request.app.state.cfg.max_text
    if len(body["text"]) > limit:
        raise ApiError(413, f"text exceeds the server's limit max_text ({limit} characters)")
    return body, served_model(request, body.pop("model", None))


async def in_slot(request: Request, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """function(*args, **kwargs) on a worker thread, holding one of the server's slots; a bad layer or kind is a 400."""
    slots: Slots = request.app.state.slots
    slots.take()
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except CharRNNError as e:
        raise ApiError(400, str(e)) from None
    finally:
        slots.release_once()()


async def score(request: Request) -> Response:
    """POST /v1/score: each token's log-probability (nats), the top_k next tokens at each position, bits/char."""
    from charrnn.score import score_text

    body, m = await text_request(request, SCORE_FIELDS)
    top_k = body.get("top_k", 5)
    if not 0 <= top_k <= MAX_TOP_K:
        raise ApiError(400, f"top_k must be between 0 and {MAX_TOP_K}, got {top_k}")
    found = await in_slot(
        request, score_text, m.model, m.tokenizer, body["text"], top_k=top_k, device=m.device, precision=m.precision
    )
    return JSONResponse(found.to_dict())


async def activations(request: Request) -> Response:
    """POST /v1/activations: one layer's units at each token (hidden; LSTMs also cell and gates), float16 base64."""
    from charrnn.score import activations as unit_values

    body, m = await text_request(request, ACTIVATIONS_FIELDS)
    layer, kind = body.get("layer", 0), body.get("kind", "hidden")
    found = await in_slot(
        request, unit_values, m.model, m.tokenizer, body["text"], layer=layer, kind=kind, device=m.device
    )
    return JSONResponse(found.to_dict())


async def list_models(request: Request) -> Response:
    """GET /v1/models: what `charrnn info` shows of each model, keyed by name."""
    return JSONResponse({name: m.info for name, m in request.app.state.models.items()})


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


def openapi_schema(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """A short OpenAPI document: every route with its summary, and generate's accepted fields."""
    types = {"int": "integer", "float": "number", "str": "string", "bool": "boolean", "list[str]": "array"}
    properties = {
        name: {"type": types.get(kind.split("|")[0].strip(), "string")} for name, kind in GENERATE_FIELDS.items()
    }
    paths: dict[str, Any] = {}
    for route in routes:
        if isinstance(route, Route) and route.endpoint.__doc__:
            for method in sorted((route.methods or set()) - {"HEAD"}):
                paths.setdefault(route.path, {})[method.lower()] = {"summary": route.endpoint.__doc__.split("\n")[0]}
    paths["/v1/generate"]["post"]["requestBody"] = {
        "content": {"application/json": {"schema": {"type": "object", "properties": properties}}}
    }
    return {"openapi": "3.0.0", "info": {"title": "charrnn", "version": "1"}, "paths": paths}


# -- the application -----------------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("request failed: %s", exc, exc_info=exc)
    return JSONResponse({"error": "internal error (logged on the server)"}, status_code=500)


def create_app(models: dict[str, ServedModel], cfg: ServeConfig, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The API over loaded models; extra_routes (the web page's) are appended."""
    routes = [
        Route("/v1/generate", generate, methods=["POST"]),
        Route("/v1/score", score, methods=["POST"]),
        Route("/v1/activations", activations, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        *extra_routes,
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error},
        lifespan=_lifespan,
    )
    app.state.models, app.state.cfg = models, cfg
    app.state.slots = Slots(cfg.max_concurrent)
    app.state.engine = Engine()
    app.state.openapi = openapi_schema(routes)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """At shutdown (uvicorn's answer to SIGINT and SIGTERM) the engine's thread stops."""
    yield
    app.state.engine.stop()


def model_threads() -> int:
    """One fewer than the cores torch would use (at least one). Waiting intra-op threads spin; on
    every core they stall the event loop that streams the text (and clients on the same machine),
    and the model's work with it, so one core is left to answering requests."""
    return max(1, torch.get_num_threads() - 1)


def run(cfg: ServeConfig, device: str, extra_routes: Sequence[BaseRoute] = ()) -> None:
    """Load the models and serve (with extra_routes: the web page's) until SIGINT or SIGTERM."""
    import uvicorn

    from charrnn.runtime import resolve_device

    dev = resolve_device(device)
    torch.set_num_threads(cfg.threads or model_threads())
    served = load_models(cfg.checkpoints, dev, cfg.precision)
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach it may use the API (there is no authentication)", cfg.host)
    uvicorn.run(
        create_app(served, cfg, extra_routes),
        host=cfg.host,
        port=cfg.port,
        timeout_graceful_shutdown=5,
        log_level="info",
    )
