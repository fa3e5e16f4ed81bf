"""Generate text with onnxruntime from `charrnn export RUN -o model.onnx`: numpy and onnxruntime only.

Usage: python onnx_generate.py model.onnx "ROMEO:" 200   (a char or byte run: the prime is looked up piece by piece)
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

path, prime, length = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
session = ort.InferenceSession(path)
tok = json.loads(path.with_suffix(".tokenizer.json").read_text(encoding="utf-8"))
pieces = [bytes.fromhex(p) for p in tok["pieces"]]  # the UTF-8 bytes of each id
index = {piece: i for i, piece in enumerate(pieces)}
m = tok["model"]
state = {name: np.zeros((m["layers"], 1, m["hidden_size"]), np.float32) for name in m["inputs"][1:]}
ids = [index[c.encode()] for c in prime]
lead = [index[b"\n"]] if m.get("start") == "newline" else []  # it reads every text after a newline
ids = lead + ids
rng, fed = np.random.default_rng(0), len(ids)
for step in range(len(ids) + length - 1):
    logits, *new = session.run(None, {"ids": np.array([ids[step]], np.int64), **state})
    state = dict(zip(m["inputs"][1:], new, strict=True))
    if step >= fed - 1:  # past the prime: sample the next token at temperature 0.8
        p = np.exp((logits[0] - logits[0].max()) / 0.8)
        ids.append(int(rng.choice(len(p), p=p / p.sum())))
print(b"".join(pieces[i] for i in ids[len(lead) :]).decode("utf-8", errors="replace"))
