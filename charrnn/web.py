"""The web page `charrnn serve` shows at `/`: Write (continue text at the cursor, branches) and Inspect
(surprisal, a unit's activation, find units). The page is plain HTML, CSS and JavaScript shipped in
charrnn/web/ (no build step, nothing fetched from elsewhere: its Content-Security-Policy allows only
this server); it talks to the server's API plus the two endpoints here that only the page needs."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from charrnn import serve, units
from charrnn.registry import CELL_INFO

# The page may load and call only what this server serves: no CDN, font, or tracker can sneak in.
POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
LSTM_KINDS = ["hidden", "cell", "input", "forget", "cell_gate", "output"]


def routes() -> list[BaseRoute]:
    """The page, its files, and its endpoints; `charrnn serve` appends them to the API's routes."""
    return [
        Route("/", page, methods=["GET"]),
        Mount("/static", app=StaticFiles(packages=[("charrnn", "web")]), name="static"),
        Route("/v1/web/models", models, methods=["GET"]),
        Route("/v1/units", find_units, methods=["POST"]),
    ]


async def page(request: Request) -> HTMLResponse:
    html = (resources.files("charrnn") / "web" / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Content-Security-Policy": POLICY, "Cache-Control": "no-cache"})


def describe(served: serve.ServedModel) -> dict:
    """What the page needs to know of a model: its one-line summary, and what it can shade by."""
    cfg = served.model.cfg
    info = served.info
    parts = [info.get("model"), f"{info['parameters']} parameters" if "parameters" in info else None]
    parts += [info.get("tokenizer"), f"best val {info['best val loss']}" if "best val loss" in info else None]
    return {
        "line": ", ".join(p for p in parts if p),
        "cell": cfg.cell,
        "layers": cfg.layers,
        "units": cfg.hidden_size,
        "kinds": LSTM_KINDS if CELL_INFO[cfg.cell].cell_state else ["hidden"],
    }


async def models(request: Request) -> JSONResponse:
    """Each model's summary line, layers, units and activation kinds, keyed by name."""
    return JSONResponse({name: describe(served) for name, served in request.app.state.models.items()})


@dataclass
class UnitsRequest:
    text: str
    model: str | None = None
    kind: str = "hidden"
    layers: list[int] | None = None  # every layer when absent
    top: int = 5


async def find_units(request: Request) -> JSONResponse:
    """The `top` units (of the given layers and kind) most correlated with each probe on the text."""
    body = await serve.read_json(request, UnitsRequest)
    served = serve.model_named(request.app, body.model)
    serve.check_text_size(request.app, body.text)
    layers = body.layers if body.layers is not None else list(range(served.model.cfg.layers))
    top = max(1, min(body.top, 50))
    ranked = await run_in_threadpool(
        units.find_units,
        served.model,
        served.tokenizer,
        body.text,
        layers=layers,
        kind=body.kind,
        top=top,
        device=served.device,
    )
    probes = [
        {"name": name, "description": units.PROBES[name], "kind": body.kind, "units": [s.to_dict() for s in best]}
        for name, best in ranked.items()
    ]
    return JSONResponse({"model": served.name, "kind": body.kind, "probes": probes})
