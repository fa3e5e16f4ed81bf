"""`charrnn serve` under load: aggregate characters per second and time to first character.

Trains a 2x512 LSTM for a single step on some of the Python standard library's source (quality does not
matter for speed), starts `charrnn serve` on 127.0.0.1 in a subprocess, and drives 1, 8 and 32 concurrent
streams: each stream sends its requests one after another (a bounded number), every request sampling
`--length` characters. All streams start at once and, their requests being equally long, go on in step:
each new wave of 32 requests arrives together, the hardest case for time to first character. The load
generator runs on the same machine, so it takes some of the CPU too; it is kept light (HTTP by hand).

    python bench/serve.py                       # 1, 8, 32 streams
    python bench/serve.py --streams 1 32 --length 500

Prints a table and writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import record  # noqa: E402


def build_model(root: Path) -> Path:
    """A 2x512 LSTM run folder, trained one step (speed does not depend on the weights)."""
    from charrnn import data, trainer
    from charrnn.config import DataConfig, TrainConfig

    corpus = root / "corpus.txt"
    corpus.write_text("".join(Path(f).read_text(encoding="utf-8") for f in data.stdlib_sources()[:20])[:200_000])
    trainer.train(
        DataConfig(sources=[str(corpus)], cache_dir=str(root / "cache")),
        {"hidden_size": 512, "embed_size": 64, "layers": 2, "dropout": 0.0},
        TrainConfig(max_steps=1, eval_every=10**9, warmup_steps=1, precision="fp32"),
        out=str(root / "lstm-2x512"),
        command=["bench/serve.py"],
    )
    return root / "lstm-2x512"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Connection:
    """One keep-alive HTTP/1.1 connection to the server, spoken by hand over asyncio streams: the load
    generator shares the server's cores, and a client library's work per request and per piece (httpx's,
    before) was measured as the server's time to first character (docs/benchmarks.md)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def post(self, path: str, body: dict) -> tuple[float | None, bytes]:
        """Send the request; the seconds from sending to the first piece of the body, and the body."""
        data = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
        t0 = time.perf_counter()
        self.writer.write(f"{head}content-length: {len(data)}\r\n\r\n".encode() + data)
        status, *header_lines = (await self.reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        if " 200 " not in status + " ":
            raise SystemExit(f"request failed: {status}")
        headers = dict(line.lower().split(": ", 1) for line in header_lines if line)
        if "content-length" in headers:
            return time.perf_counter() - t0, await self.reader.readexactly(int(headers["content-length"]))
        first, pieces = None, []
        while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):  # chunked: size, data, CRLF
            pieces.append(await self.reader.readexactly(size + 2))
            first = first if first is not None else time.perf_counter() - t0
        await self.reader.readuntil(b"\r\n")
        return first, b"".join(p[:-2] for p in pieces)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def one_stream(url: str, requests: int, length: int, seed: int) -> list[dict]:
    """Requests one after another on one connection; for each, seconds to its first character and the
    characters received. The first piece of a response is its first text (an error would fail the count
    below); lines are parsed once the response ends, so the load generator spends little per piece."""
    out = []
    connection = await Connection.open(url)
    try:
        for r in range(requests):
            body = {"length": length, "temperature": 0.8, "seed": seed * 1000 + r}
            first, text = await connection.post("/v1/generate", body)
            events = [json.loads(line) for line in text.decode().splitlines()]
            chars = sum(len(e.get("text", "")) for e in events)
            if "error" in events[-1] or chars != length:
                raise SystemExit(f"request failed: {events[-1]}")
            out.append({"ttfc": first, "chars": chars})
    finally:
        await connection.close()
    return out


async def drive(url: str, streams: int, requests: int, length: int) -> dict:
    await one_stream(url, 1, 20, 0)  # warm up
    t0 = time.perf_counter()
    results = await asyncio.gather(*(one_stream(url, requests, length, s) for s in range(streams)))
    wall = time.perf_counter() - t0
    done = [r for rs in results for r in rs]
    ttfc = sorted(r["ttfc"] for r in done)
    chars = sum(r["chars"] for r in done)
    return {
        "streams": streams,
        "requests": len(done),
        "chars": chars,
        "seconds": wall,
        "chars_per_sec": chars / wall,
        "ttfc_p50_ms": 1000 * statistics.median(ttfc),
        "ttfc_p99_ms": 1000 * ttfc[min(len(ttfc) - 1, round(0.99 * (len(ttfc) - 1)))],
    }


def wait_until_up(url: str, server: subprocess.Popen) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit("the server exited")
        try:
            httpx.get(url + "/v1/models", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def print_table(rows: list[dict]) -> None:
    one = rows[0]["chars_per_sec"]
    print("| streams | requests | chars/s | vs 1 stream | TTFC p50 | TTFC p99 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['streams']} | {r['requests']} | {r['chars_per_sec']:,.0f} | {r['chars_per_sec'] / one:.2f}x "
            f"| {r['ttfc_p50_ms']:.1f} ms | {r['ttfc_p99_ms']:.1f} ms |"
        )


def _installed(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--length", type=int, default=300, help="characters per request")
    parser.add_argument("--requests", type=int, default=4, help="requests per stream")
    parser.add_argument("--precision", default="auto", help="the server's --precision")
    parser.add_argument("--device", default="cpu", help="the server's --device (cpu, cuda)")
    parser.add_argument("--threads", type=int, help="the server's --threads (default: its own, cores - 1)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-serve-") as tmp:
        run = build_model(Path(tmp))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "charrnn", "serve", str(run), "--port", str(port), "--precision", args.precision]
        cmd += ["--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
        server = subprocess.Popen(
            cmd + ["--max-concurrent", "256"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        try:
            wait_until_up(url, server)
            rows = [asyncio.run(drive(url, n, args.requests, args.length)) for n in args.streams]
        finally:
            server.terminate()
            server.wait(10)
    print_table(rows)
    meta = {
        "load_average_after": os.getloadavg(),
        "model": "lstm 2x512, 65-ish character vocabulary",
        "precision": args.precision,
        "device": args.device,
        "length": args.length,
        "requests_per_stream": args.requests,
        "server": "charrnn serve defaults: --threads cores - 1, --stream-interval 0.02; event loop "
        + ("uvloop + httptools" if _installed("uvloop", "httptools") else "asyncio + h11"),
    }
    record.write(args.out, meta, rows)


if __name__ == "__main__":
    main()
