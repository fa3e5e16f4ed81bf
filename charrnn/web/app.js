// The charrnn page: Write (continue text at the cursor, branches) and Inspect (surprisal, units, find units).
// Plain JavaScript over the server's own API; nothing is fetched from anywhere else.
"use strict";

const $ = (id) => document.getElementById(id);
const LN2 = Math.log(2);
const MAX_BITS = 12; // the surprisal scale's top: rarer than 1 in 4096
const GATES = new Set(["input", "forget", "output"]); // sigmoid gates lie in [0, 1]

const state = {
  models: {}, // name -> {line, cell, layers, units, kinds}
  model: null,
  writing: null, // the AbortController of the generation in flight
  branchAt: 0, // where the branches continue the text
  scored: null, // {text, tokens: [{start, text, bits, top}], bitsPerChar}
  activations: new Map(), // "layer/kind" -> {units, values: Float32Array} for the scored text
  shown: null, // Float32Array: the values the view is shaded by now, one per token
  current: -1, // the token the keyboard points at in the view
};

// ---------------------------------------------------------------- the API

async function post(path, body, signal) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error || message;
    } catch (_) {
      /* not JSON: keep the status line */
    }
    throw new Error(message);
  }
  return response;
}

// One line of a stream as an event object, or null for SSE framing and blank lines.
function parseLine(text) {
  let line = text.trim();
  if (line.startsWith("data:")) line = line.slice(5).trim();
  else if (line.startsWith(":") || /^(event|id|retry):/.test(line)) return null;
  if (!line || line === "[DONE]") return null;
  const event = JSON.parse(line);
  if (event.error) throw new Error(event.error);
  return event;
}

// Events of a streamed response, NDJSON or Server-Sent Events, each a JSON object.
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
    const lines = buffer.split("\n");
    buffer = done ? "" : lines.pop(); // an unfinished line waits for the rest
    for (const line of lines) {
      const event = parseLine(line);
      if (event) yield event;
    }
    if (done) return;
  }
}

// ---------------------------------------------------------------- models

async function loadModels() {
  const response = await fetch("v1/web/models");
  state.models = await response.json();
  const picker = $("model");
  picker.replaceChildren(...Object.keys(state.models).map((name) => new Option(name, name)));
  picker.closest("label").hidden = picker.options.length < 2;
  chooseModel(picker.value);
}

function chooseModel(name) {
  state.model = name;
  const model = state.models[name];
  $("model-info").textContent = `${name}: ${model.line}`;
  $("layer").replaceChildren(...Array.from({ length: model.layers }, (_, i) => new Option(`${i}`, `${i}`)));
  $("kind").replaceChildren(...model.kinds.map((k) => new Option(k, k)));
  $("unit").max = model.units - 1;
  state.activations.clear();
  if (state.scored) analyze();
}

// ---------------------------------------------------------------- Write

function settings() {
  const number = (id) => Number($(id).value);
  const body = { model: state.model, length: number("length"), temperature: number("temperature") };
  if (number("top-p") > 0 && number("top-p") < 1) body.top_p = number("top-p");
  if (number("beam") >= 2) body.beam = number("beam");
  if ($("seed").value !== "") body.seed = number("seed");
  return body;
}

function startWriting(label) {
  stopWriting();
  const controller = new AbortController();
  state.writing = controller;
  $("stop").disabled = false;
  $("write-status").textContent = label;
  return controller;
}

function stopWriting() {
  if (!state.writing) return;
  state.writing.abort();
  state.writing = null;
  $("stop").disabled = true;
  $("write-status").textContent = "stopped";
}

function finishWriting(controller, error, message) {
  if (state.writing !== controller) return; // a newer request owns the status
  state.writing = null;
  $("stop").disabled = true;
  const status = $("write-status");
  status.classList.toggle("error", Boolean(error) && error.name !== "AbortError");
  status.textContent = error ? (error.name === "AbortError" ? "stopped" : error.message) : message;
}

function primeAtCursor() {
  const editor = $("editor");
  return { at: editor.selectionEnd, prime: editor.value.slice(0, editor.selectionEnd) };
}

async function continueText() {
  const editor = $("editor");
  const { prime } = primeAtCursor();
  let at = prime.length;
  const controller = startWriting("writing…");
  const body = settings();
  if (prime) body.prime = prime;
  let written = 0;
  let pieces = 0;
  try {
    const response = await post("v1/generate", body, controller.signal);
    for await (const event of events(response)) {
      if (!event.text || controller.signal.aborted) continue;
      editor.setRangeText(event.text, at, at, "end");
      at += event.text.length;
      written += event.text.length;
      pieces += 1;
      $("write-status").textContent = `writing… ${written} characters`;
    }
    finishWriting(controller, null, `wrote ${written} characters in ${pieces} pieces`);
  } catch (error) {
    finishWriting(controller, error);
  }
}

// A branch: its number, then the end of the line it continues (dimmed) and the continuation in a <pre>.
function branchCard(i, context) {
  const card = document.createElement("button");
  card.className = "branch";
  card.dataset.i = i;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = `${i + 1}`;
  const lead = document.createElement("span");
  lead.className = "context";
  lead.textContent = context;
  const pre = document.createElement("pre");
  pre.append(lead, document.createElement("span"));
  card.append(label, pre);
  return card;
}

const branchText = (card) => card.querySelector("pre").lastChild;

async function branch() {
  const { at, prime } = primeAtCursor();
  const controller = startWriting("branching…");
  const n = Math.max(2, Number($("branches").value));
  const body = settings();
  if (prime) body.prime = prime;
  if (body.beam) Object.assign(body, { beam: Math.max(body.beam, n), n_best: n });
  else body.num_samples = n;
  state.branchAt = at;
  const context = prime.slice(prime.lastIndexOf("\n") + 1).slice(-40);
  const cards = Array.from({ length: n }, (_, i) => branchCard(i, context));
  $("branch-list").replaceChildren(...cards);
  try {
    const response = await post("v1/generate", body, controller.signal);
    for await (const event of events(response)) {
      const card = cards[event.index ?? 0];
      if (event.text && card) branchText(card).textContent += event.text;
      if (event.done && card) card.classList.add("done");
    }
    cards.forEach((card) => card.classList.add("done"));
    finishWriting(controller, null, `${n} branches: click one to take it`);
  } catch (error) {
    finishWriting(controller, error);
  }
}

function takeBranch(card) {
  stopWriting();
  const editor = $("editor");
  const text = branchText(card).textContent;
  const at = Math.min(state.branchAt, editor.value.length);
  editor.setRangeText(text, at, at, "end");
  editor.focus();
  $("branch-list").replaceChildren();
  $("write-status").textContent = `took branch ${Number(card.dataset.i) + 1}`;
}

function writeKeys(event) {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    if (event.shiftKey) branch();
    else continueText();
  } else if (event.key === "Escape" && state.writing) {
    event.preventDefault();
    stopWriting();
  } else if (event.altKey && /^[1-9]$/.test(event.key)) {
    const card = $("branch-list").children[Number(event.key) - 1];
    if (card) {
      event.preventDefault();
      takeBranch(card);
    }
  }
}

// ---------------------------------------------------------------- Inspect: colours and legend

function surprisalColour(bits) {
  const t = Math.min(Math.max(bits, 0), MAX_BITS) / MAX_BITS;
  return `hsl(${50 - 50 * t}, 100%, ${100 - 38 * t}%)`;
}

// Diverging for values that take both signs (blue below zero, orange above); one hue for gates in [0, 1].
function activationColour(value, scale, gate) {
  const t = Math.min(Math.abs(value) / scale, 1);
  if (gate) return `hsl(150, 70%, ${100 - 42 * t}%)`;
  return value < 0 ? `hsl(212, 90%, ${100 - 38 * t}%)` : `hsl(24, 95%, ${100 - 38 * t}%)`;
}

function legend(title, stops, colour) {
  const bar = document.createElement("span");
  bar.className = "bar";
  for (const [value, text] of stops) {
    const cell = document.createElement("span");
    cell.style.background = colour(value);
    cell.textContent = text;
    bar.append(cell);
  }
  const label = document.createElement("span");
  label.textContent = title;
  $("legend").replaceChildren(label, bar);
}

// ---------------------------------------------------------------- Inspect: the shaded view

function visible(text) {
  return text.replace(/\n/g, "↵\n").replace(/\t/g, "→\t");
}

// One pass over the tokens into a DocumentFragment; events are delegated to the view, not bound per span.
function buildView(tokens) {
  const fragment = document.createDocumentFragment();
  tokens.forEach((token, i) => {
    const span = document.createElement("span");
    span.dataset.i = i;
    span.textContent = visible(token.text);
    if (token.text.includes("\n")) span.className = "nl";
    fragment.append(span);
  });
  $("view").replaceChildren(fragment);
  state.current = -1;
}

function shade(values, colour) {
  state.shown = values;
  const spans = $("view").children;
  for (let i = 0; i < spans.length; i++) spans[i].style.backgroundColor = colour(values[i]);
}

function shadeBySurprisal() {
  const bits = Float32Array.from(state.scored.tokens, (t) => t.bits);
  shade(bits, surprisalColour);
  const stops = [0, 2, 4, 6, 8, 10, 12].map((b) => [b, b === MAX_BITS ? `${b}+` : `${b}`]);
  legend("surprisal, bits:", stops, surprisalColour);
}

async function shadeByUnit() {
  const layer = Number($("layer").value);
  const kind = $("kind").value;
  const found = await activationsOf(layer, kind);
  const unit = Math.min(Math.max(Number($("unit").value), 0), found.units - 1);
  const column = new Float32Array(found.positions);
  let largest = 0;
  for (let p = 0; p < found.positions; p++) {
    column[p] = found.values[p * found.units + unit];
    largest = Math.max(largest, Math.abs(column[p]));
  }
  const gate = GATES.has(kind);
  const scale = gate ? 1 : Math.max(1, Math.ceil(largest * 10) / 10);
  shade(column, (v) => activationColour(v, scale, gate));
  const points = gate ? [0, 0.25, 0.5, 0.75, 1] : [-1, -0.5, 0, 0.5, 1].map((f) => f * scale);
  const stops = points.map((v) => [v, v.toFixed(2)]);
  legend(`layer ${layer} ${kind} unit ${unit}:`, stops, (v) => activationColour(v, scale, gate));
}

async function reshade() {
  if (!state.scored) return;
  try {
    if ($("shade").value === "unit") await shadeByUnit();
    else shadeBySurprisal();
  } catch (error) {
    inspectStatus(error.message, true);
  }
}

function inspectStatus(message, error = false) {
  $("inspect-status").textContent = message;
  $("inspect-status").classList.toggle("error", error);
}

// ---------------------------------------------------------------- Inspect: requests

async function analyze() {
  const text = $("inspect-input").value;
  if (!text) return inspectStatus("nothing to inspect: type or paste text first", true);
  inspectStatus("scoring…");
  try {
    const response = await post("v1/score", { model: state.model, text, top_k: 5 });
    const scored = await response.json();
    const tokens = scored.tokens.map((t) => ({ start: t.start, text: t.text, bits: -t.logprob / LN2, top: t.top }));
    state.scored = { text, tokens, bitsPerChar: scored.bits_per_char };
    state.activations.clear();
    buildView(tokens);
    await reshade();
    inspectStatus(`${tokens.length} tokens, ${scored.bits_per_char.toFixed(3)} bits per character`);
  } catch (error) {
    inspectStatus(error.message, true);
  }
}

let HALF = null; // float16 bit pattern -> value, built on first use
function halfTable() {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 31;
    const fraction = h & 1023;
    if (exponent === 0) HALF[h] = sign * fraction * 2 ** -24;
    else if (exponent === 31) HALF[h] = fraction ? NaN : sign * Infinity;
    else HALF[h] = sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  return HALF;
}

function decodeHalf(base64) {
  const raw = atob(base64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const view = new DataView(bytes.buffer);
  const table = halfTable();
  const values = new Float32Array(raw.length / 2);
  for (let i = 0; i < values.length; i++) values[i] = table[view.getUint16(2 * i, true)];
  return values;
}

async function activationsOf(layer, kind) {
  const key = `${layer}/${kind}`;
  if (!state.activations.has(key)) {
    inspectStatus(`reading layer ${layer} ${kind}…`);
    const body = { model: state.model, text: state.scored.text, layer, kind };
    const found = await (await post("v1/activations", body)).json();
    const [positions, units] = found.shape;
    state.activations.set(key, { positions, units, values: decodeHalf(found.data) });
    inspectStatus(`${positions} tokens, layer ${layer} ${kind}: ${units} units`);
  }
  return state.activations.get(key);
}

async function findUnits() {
  if (!state.scored) await analyze();
  if (!state.scored) return;
  inspectStatus("finding units…");
  try {
    const body = { model: state.model, text: state.scored.text, kind: $("kind").value, top: 3 };
    const found = await (await post("v1/units", body)).json();
    $("units").replaceChildren(unitsTable(found.probes));
    inspectStatus(`units of every layer's ${body.kind} ranked by correlation with each probe`);
  } catch (error) {
    inspectStatus(error.message, true);
  }
}

function unitsTable(probes) {
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const title of ["probe", "what it measures", "best units (click to shade), correlation r"]) {
    const th = document.createElement("th");
    th.textContent = title;
    head.append(th);
  }
  const body = table.createTBody();
  for (const probe of probes) {
    const row = body.insertRow();
    row.insertCell().textContent = probe.name;
    row.insertCell().textContent = probe.description;
    const cell = row.insertCell();
    for (const unit of probe.units) {
      const button = document.createElement("button");
      button.className = "unit-link";
      Object.assign(button.dataset, { layer: unit.layer, unit: unit.unit, kind: probe.kind });
      button.textContent = `layer ${unit.layer} unit ${unit.unit}  r=${unit.r >= 0 ? "+" : ""}${unit.r.toFixed(2)}`;
      cell.append(button);
    }
  }
  return table;
}

function showUnit(button) {
  $("layer").value = button.dataset.layer;
  $("kind").value = button.dataset.kind;
  $("unit").value = button.dataset.unit;
  $("shade").value = "unit";
  reshade();
}

// ---------------------------------------------------------------- Inspect: the tooltip

// A token as the tooltip shows it: whitespace made visible, other control characters escaped.
function shown(text) {
  const marks = { " ": "␣", "\n": "↵", "\t": "→" };
  return text.replace(/[ \n\t]/g, (c) => marks[c]).replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

function tipRow(table, guess, probability, actual) {
  const row = table.insertRow();
  if (actual) row.className = "actual";
  row.insertCell().textContent = shown(guess);
  const p = row.insertCell();
  p.className = "p";
  p.textContent = `${(100 * probability).toFixed(1)}%`;
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.style.width = `${Math.max(1, 60 * probability)}px`;
  row.insertCell().append(bar);
}

function showTip(i, x, y) {
  const token = state.scored.tokens[i];
  const tip = $("tip");
  const head = document.createElement("div");
  let line = `“${shown(token.text)}”: ${token.bits.toFixed(2)} bits`;
  if ($("shade").value === "unit" && state.shown) line += `, activation ${state.shown[i].toFixed(3)}`;
  head.textContent = line;
  const table = document.createElement("table");
  for (const [guess, probability] of token.top) tipRow(table, guess, probability, guess === token.text);
  const caption = document.createElement("div");
  caption.textContent = "the model's top guesses here:";
  tip.replaceChildren(head, caption, table);
  tip.hidden = false;
  const room = window.innerWidth - tip.offsetWidth - 8;
  tip.style.left = `${Math.max(4, Math.min(x + 12, room))}px`;
  tip.style.top = `${y + 18 + tip.offsetHeight > window.innerHeight ? y - tip.offsetHeight - 8 : y + 18}px`;
}

function hoverView(event) {
  const span = event.target.closest("span[data-i]");
  if (!span || !state.scored) return;
  showTip(Number(span.dataset.i), event.clientX, event.clientY);
}

function moveInView(event) {
  if (!state.scored) return;
  const steps = { ArrowRight: 1, ArrowLeft: -1, Home: -Infinity, End: Infinity };
  if (event.key === "Escape") return void ($("tip").hidden = true);
  if (!(event.key in steps)) return;
  event.preventDefault();
  const spans = $("view").children;
  spans[state.current]?.classList.remove("cur");
  state.current = Math.min(Math.max(state.current + steps[event.key], 0), spans.length - 1);
  const span = spans[state.current];
  span.classList.add("cur");
  span.scrollIntoView({ block: "nearest" });
  const box = span.getBoundingClientRect();
  showTip(state.current, box.left, box.bottom - 14);
}

// ---------------------------------------------------------------- tabs and wiring

function showTab(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.getAttribute("aria-controls") === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  $("tip").hidden = true;
}

function tabKeys(event) {
  if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
  const next = event.target.id === "tab-write" ? "tab-inspect" : "tab-write";
  $(next).focus();
  showTab($(next).getAttribute("aria-controls"));
}

function wire() {
  $("model").addEventListener("change", (e) => chooseModel(e.target.value));
  $("tab-write").addEventListener("click", () => showTab("write"));
  $("tab-inspect").addEventListener("click", () => showTab("inspect"));
  document.querySelector("nav").addEventListener("keydown", tabKeys);
  $("continue").addEventListener("click", continueText);
  $("branch").addEventListener("click", branch);
  $("stop").addEventListener("click", stopWriting);
  $("editor").addEventListener("keydown", writeKeys);
  $("editor").addEventListener("input", stopWriting); // typing takes over from the model
  $("branch-list").addEventListener("click", (e) => {
    const card = e.target.closest(".branch");
    if (card) takeBranch(card);
  });
  $("analyze").addEventListener("click", analyze);
  $("from-editor").addEventListener("click", () => {
    $("inspect-input").value = $("editor").value;
    analyze();
  });
  $("inspect-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      analyze();
    }
  });
  $("shade").addEventListener("change", reshade);
  const byUnit = () => {
    $("shade").value = "unit";
    reshade();
  };
  for (const [id, type] of [["layer", "change"], ["kind", "change"], ["unit", "input"]]) $(id).addEventListener(type, byUnit);
  $("find-units").addEventListener("click", findUnits);
  $("units").addEventListener("click", (e) => {
    const button = e.target.closest(".unit-link");
    if (button) showUnit(button);
  });
  $("view").addEventListener("mouseover", hoverView);
  $("view").addEventListener("mouseleave", () => ($("tip").hidden = true));
  $("view").addEventListener("keydown", moveInView);
}

wire();
loadModels().catch((error) => {
  $("model-info").textContent = `could not list the models: ${error.message}`;
});
