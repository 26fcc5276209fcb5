// The playground: plain JavaScript, no build step. Server data is only ever inserted with
// textContent (never innerHTML), so a document cannot inject markup into this page.
"use strict";

const KEY_STORE = "rag-playground-key";
const $ = (id) => document.getElementById(id);

function headers(extra = {}) {
  const key = $("api-key").value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function problem(response) {
  // problem+json (RFC 9457) from the API; anything else by its status line.
  try {
    const body = await response.json();
    return body.detail || body.title || `${response.status}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

// Server-sent events over fetch (EventSource cannot POST): the WHATWG parsing rules for
// the fields we use; comment lines (keep-alives) are ignored, CRLF and CR are line ends.
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length) yield { event, data: data.join("\n") };
        event = "message";
        data = [];
      } else if (line.startsWith(":")) {
        continue;
      } else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
    }
  }
}

function showProvenance(answer, millis) {
  const list = $("provenance");
  list.replaceChildren();
  const p = answer.provenance || {};
  const rows = [
    ["rung", p.rung || answer.generator],
    ["model", p.model || "-"],
    ["route", p.route || "-"],
    ["grounded", p.grounded === null || p.grounded === undefined ? "-" : String(p.grounded)],
    ["latency", `${Math.round(millis)} ms in this browser`],
    ["cost", `$${(p.cost_usd || 0).toFixed(6)}`],
  ];
  for (const [name, value] of rows) {
    list.append(el("dt", name), el("dd", value));
  }
  list.dataset.rung = p.rung || "";
}

function showCitations(citations) {
  const list = $("citations");
  list.replaceChildren();
  for (const c of citations) {
    const item = el("li");
    item.value = c.number;
    const where = [c.source, c.section, c.page ? `page ${c.page}` : ""].filter(Boolean);
    item.append(el("strong", c.title || c.source), " ", el("span", where.join(" · "), "citation-meta"));
    item.append(el("span", c.quote, "quote"));
    item.dataset.source = c.source;
    list.append(item);
  }
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  const answerBox = $("answer");
  answerBox.textContent = "";
  $("ask-error").textContent = "";
  $("citations").replaceChildren();
  $("provenance").replaceChildren();
  $("ask-button").disabled = true;
  const started = performance.now();
  try {
    const response = await fetch("/v1/ask/stream", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ question }),
    });
    if (!response.ok) {
      $("ask-error").textContent = await problem(response);
      return;
    }
    for await (const { event: kind, data } of sseEvents(response)) {
      const payload = JSON.parse(data);
      if (kind === "token") {
        answerBox.textContent += payload.text;
      } else if (kind === "answer") {
        answerBox.textContent = payload.answer;
        answerBox.dataset.found = String(payload.found);
        showCitations(payload.citations);
        showProvenance(payload, performance.now() - started);
      } else if (kind === "error") {
        $("ask-error").textContent = payload.detail || payload.title || "the stream failed";
      }
    }
  } catch (error) {
    $("ask-error").textContent = `request failed: ${error.message}`;
  } finally {
    $("ask-button").disabled = false;
  }
}

async function listDocuments() {
  const response = await fetch("/v1/documents?limit=200", { headers: headers() });
  const body = $("document-table").tBodies[0];
  if (!response.ok) {
    $("document-count").textContent = response.status === 401 ? "enter an API key to list documents" : await problem(response);
    body.replaceChildren();
    return;
  }
  const page = await response.json();
  body.replaceChildren(
    ...page.documents.map((d) => {
      const row = el("tr");
      row.append(el("td", d.source), el("td", d.title), el("td", d.chunks), el("td", d.ingested_at));
      return row;
    }),
  );
  $("document-count").textContent = `${page.total} document(s)` + (page.next_after ? " (first 200 shown)" : "");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function upload(event) {
  event.preventDefault();
  const files = $("files").files;
  if (!files.length) return;
  $("upload-error").textContent = "";
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const response = await fetch("/v1/documents", { method: "POST", headers: headers(), body: form });
  if (!response.ok) {
    $("upload-error").textContent = await problem(response);
    return;
  }
  const accepted = await response.json();
  const job = $("job");
  for (;;) {
    const polled = await fetch(accepted.status_url, { headers: headers() });
    if (!polled.ok) {
      $("upload-error").textContent = await problem(polled);
      return;
    }
    const status = await polled.json();
    const p = status.progress || {};
    job.textContent = `job ${status.job_id.slice(0, 8)}: ${status.state} · files ${p.files_done ?? 0}/${p.files_total ?? "?"} · chunks embedded ${p.chunks_embedded ?? 0}/${p.chunks_total ?? "?"}`;
    job.dataset.state = status.state;
    const errors = Object.entries(status.errors || {});
    if (errors.length) $("upload-error").textContent = errors.map(([file, reason]) => `${file}: ${reason}`).join("; ");
    if (!["queued", "running"].includes(status.state)) break;
    await sleep(500);
  }
  await listDocuments();
}

document.addEventListener("DOMContentLoaded", () => {
  const key = $("api-key");
  key.value = sessionStorage.getItem(KEY_STORE) || "";
  key.addEventListener("change", () => {
    sessionStorage.setItem(KEY_STORE, key.value.trim());
    listDocuments();
  });
  $("ask-form").addEventListener("submit", ask);
  $("upload-form").addEventListener("submit", upload);
  listDocuments();
});
