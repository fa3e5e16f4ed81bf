"""The web page `charrnn serve` shows at `/`: Write (continue text at the cursor, branches) and Inspect
(surprisal, a unit's activation, find units). The page is plain HTML, CSS and JavaScript shipped in
charrnn/web/ (no build step, nothing fetched from elsewhere: its Content-Security-Policy allows only
this server); it talks to the server's API (/v1/generate, /v1/score, /v1/activations) plus the
endpoints here: /v1/web/models and /v1/units."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from charrnn import score, units
from charrnn.serve import TEXT_FIELDS, ServedModel, in_slot, text_request

# The page may load and call only what this server serves: no CDN, font, or tracker can sneak in.
POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


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


def describe(served: ServedModel) -> dict:
    """What the page needs to know of a model: its one-line summary, and what it can shade by."""
    info = served.info
    parts = [info.get("model"), f"{info['parameters']} parameters" if "parameters" in info else None]
    parts += [info.get("tokenizer"), f"best val {info['best val loss']}" if "best val loss" in info else None]
    return {
        "line": ", ".join(p for p in parts if p),
        "cell": served.model.cfg.cell,
        "layers": served.model.cfg.layers,
        "units": served.model.cfg.hidden_size,
        "kinds": list(score.LSTM_KINDS if served.model.cell_state else ("hidden",)),
    }


async def models(request: Request) -> JSONResponse:
    """GET /v1/web/models: each model's summary line, layers, units and activation kinds, keyed by name."""
    return JSONResponse({name: describe(served) for name, served in request.app.state.models.items()})


async def find_units(request: Request) -> JSONResponse:
    """POST /v1/units: the `top` units (of one layer, or every layer) most correlated with each probe."""
    body, served = await text_request(request, TEXT_FIELDS | {"kind": "str", "layer": "int | None", "top": "int"})
    layer = body.get("layer")
    layers = [layer] if layer is not None else list(range(served.model.cfg.layers))
    kind, top = body.get("kind", "hidden"), max(1, min(body.get("top", 5), 50))
    ranked = await in_slot(
        request, units.find_units, served.model, served.tokenizer, body["text"], layers=layers, kind=kind, top=top
    )
    probes = [
        {"name": name, "description": units.PROBES[name], "kind": kind, "units": [s.to_dict() for s in best]}
        for name, best in ranked.items()
    ]
    return JSONResponse({"model": served.name, "kind": kind, "probes": probes})
