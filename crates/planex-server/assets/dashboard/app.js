// planex dashboard: plain modern JavaScript over the planex API (no build step, no CDN). Every
// request carries the API key kept in this browser's localStorage; every text is set with
// textContent, never as HTML. Pages: #/tasks, #/task/ID, #/tiers, #/dead-letters, #/spend.

const KEY = "planex.api_key";
const page = document.getElementById("page");
const status = document.getElementById("status");
let stopLive = () => {};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "onclick") node.addEventListener("click", value);
    else if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child));
  return node;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const key = localStorage.getItem(KEY);
  if (key) headers.authorization = `Bearer ${key}`;
  const response = await fetch(path, { ...options, headers });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (_) {
    throw new Error(`${path}: HTTP ${response.status} without JSON (a proxy in between?)`);
  }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new Error(`${path}: ${message}`);
  }
  return body;
}

const usd = (value) => (value === undefined || value === null ? "" : `$${Number(value).toFixed(6)}`);
const when = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");
const took = (task) => (task.finished_at_ms ? `${((task.finished_at_ms - task.created_at_ms) / 1000).toFixed(2)} s` : "");
const badge = (state) => el("span", { class: `state ${state}`, "data-state": state }, state);

// Counts routes: a page draws through the `show` it got from `screen()` when it started, which
// draws nothing once the user moved to another route (its requests may still be answered later).
let routing = 0;

function screen() {
  const mine = routing;
  return (title, ...content) => {
    if (mine !== routing) return;
    page.replaceChildren(el("h2", {}, title), ...content.filter((part) => part !== null && part !== undefined));
  };
}

function failed(error) {
  status.textContent = "";
  page.replaceChildren(el("p", { class: "error", role: "alert" }, error.message));
}

// Reads an event stream (Server-Sent Events over fetch, so the API key header goes along) and
// calls `onEvent` with each event's data until the stream ends or `stop` (returned) is called;
// `onEnd`, when given, is called when the stream ended or broke without being stopped.
function follow(path, onEvent, onEnd) {
  const controller = new AbortController();
  const headers = {};
  const key = localStorage.getItem(KEY);
  if (key) headers.authorization = `Bearer ${key}`;
  (async () => {
    const response = await fetch(path, { headers, signal: controller.signal });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
        if (data) onEvent(JSON.parse(data));
      }
    }
    if (onEnd) onEnd();
  })().catch((error) => {
    if (error.name === "AbortError") return;
    status.textContent = `event stream: ${error.message}`;
    if (onEnd) onEnd();
  });
  return () => controller.abort();
}

// ---- tasks ----------------------------------------------------------------------------------

const details = new Map(); // task id -> task view, kept once the task is finished

async function tasksPage() {
  const show = screen();
  const statusFilter = el("select", { id: "status-filter", "aria-label": "status" },
    ["", "planning", "running", "complete", "partial", "failed", "rejected", "cancelled"].map((s) =>
      el("option", { value: s }, s || "any status")));
  const centerFilter = el("input", { id: "cost-center-filter", placeholder: "cost center", "aria-label": "cost center" });
  const body = el("tbody");
  const table = el("table", { id: "tasks" },
    el("thead", {}, el("tr", {}, ["Task", "Status", "Text", "Cost center", "Cost", "Duration", "Created"].map((h) => el("th", {}, h)))),
    body);
  show("Tasks", el("div", { class: "filters" }, statusFilter, centerFilter), table);
  const render = async () => {
    const query = statusFilter.value ? `?limit=50&status=${statusFilter.value}` : "?limit=50";
    const list = await api(`/v1/tasks${query}`);
    const rows = [];
    for (const item of list.tasks) {
      if (centerFilter.value && item.cost_center !== centerFilter.value) continue;
      let view = details.get(item.task_id);
      if (!view || view.status !== item.status) {
        view = await api(`/v1/tasks/${encodeURIComponent(item.task_id)}`);
        if (item.finished_at_ms) details.set(item.task_id, view);
      }
      rows.push(el("tr", { "data-task": item.task_id },
        el("td", {}, el("a", { href: `#/task/${item.task_id}` }, item.task_id.slice(0, 8))),
        el("td", {}, badge(item.status)),
        el("td", {}, item.task),
        el("td", {}, item.cost_center || "default"),
        el("td", { class: "num" }, usd(view.cost.total.cost_usd)),
        el("td", { class: "num" }, took(item)),
        el("td", {}, when(item.created_at_ms))));
    }
    body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No tasks."))]));
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  };
  // Live: the tenant's task changes (GET /v1/tasks/events) reload the list, one reload at a
  // time and at most one per RELOAD_GAP_MS; changes meanwhile cause one more. The stream
  // reconnects if it ends, waiting longer after each failure.
  const RELOAD_GAP_MS = 500;
  let busy = false;
  let again = false;
  let closed = false;
  let timer = null;
  const refresh = () => {
    if (closed) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    const started = Date.now();
    render().catch((e) => (status.textContent = e.message)).finally(() => {
      const wait = Math.max(0, RELOAD_GAP_MS - (Date.now() - started));
      setTimeout(() => {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      }, wait);
    });
  };
  statusFilter.addEventListener("change", refresh);
  centerFilter.addEventListener("change", refresh);
  await render();
  let stop = () => {};
  let retry = 1000;
  const connect = () => {
    timer = null;
    if (closed) return;
    stop = follow("/v1/tasks/events", (change) => {
      retry = 1000;
      refresh(change);
    }, () => {
      if (closed) return;
      timer = setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    });
  };
  connect();
  return () => {
    closed = true;
    if (timer !== null) clearTimeout(timer);
    stop();
  };
}

// ---- one task -------------------------------------------------------------------------------

// Levels of a DAG: a step's level is one more than its deepest dependency's.
function levels(steps) {
  const byId = new Map(steps.map((s) => [s.step_id, s]));
  const level = new Map();
  const of = (step) => {
    if (level.has(step.step_id)) return level.get(step.step_id);
    level.set(step.step_id, 0);
    const deps = step.depends_on.map((d) => byId.get(d)).filter(Boolean);
    const value = deps.length ? 1 + Math.max(...deps.map(of)) : 0;
    level.set(step.step_id, value);
    return value;
  };
  steps.forEach(of);
  return level;
}

const COLORS = { complete: "#1f8f4e", failed: "#c0392b", running: "#2f6fdb", skipped: "#b7791f", ready: "#5b6b86", pending: "#8a94a6" };

function dag(steps) {
  if (!steps.length) return el("p", { class: "muted" }, "No steps yet (the task is being planned, or never ran).");
  const level = levels(steps);
  const columns = new Map();
  for (const step of steps) {
    const l = level.get(step.step_id);
    columns.set(l, [...(columns.get(l) || []), step]);
  }
  const W = 170, H = 52, GAP_X = 60, GAP_Y = 18;
  const where = new Map();
  for (const [l, column] of columns) {
    column.forEach((step, i) => where.set(step.step_id, { x: 10 + l * (W + GAP_X), y: 10 + i * (H + GAP_Y) }));
  }
  const width = 20 + columns.size * (W + GAP_X);
  const height = 20 + Math.max(...[...columns.values()].map((c) => c.length)) * (H + GAP_Y);
  const edges = steps.flatMap((step) => step.depends_on.filter((d) => where.has(d)).map((d) => {
    const a = where.get(d), b = where.get(step.step_id);
    return svg("path", { class: "edge", d: `M${a.x + W},${a.y + H / 2} C${a.x + W + GAP_X / 2},${a.y + H / 2} ${b.x - GAP_X / 2},${b.y + H / 2} ${b.x},${b.y + H / 2}` });
  }));
  const nodes = steps.map((step) => {
    const p = where.get(step.step_id);
    return svg("g", { class: "node", "data-step": step.step_id, "data-state": step.state, transform: `translate(${p.x},${p.y})` },
      svg("rect", { width: W, height: H, fill: COLORS[step.state] || "#8a94a6" }),
      svg("text", { x: 8, y: 20 }, `${step.step_id}. ${step.tool_name}`),
      svg("text", { x: 8, y: 38 }, `${step.state} · ${step.tier}`));
  });
  return svg("svg", { id: "dag", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "the plan's steps" }, edges, nodes);
}

function timeline(task) {
  const timed = task.steps.filter((s) => s.started_at_ms);
  if (!timed.length) return el("p", { class: "muted" }, "No step has started yet.");
  const tiers = [...new Set(timed.map((s) => s.tier))];
  const start = task.created_at_ms;
  const end = Math.max(...timed.map((s) => s.finished_at_ms || Date.now()), start + 1);
  const W = 760, ROW = 26, LEFT = 110;
  const x = (ms) => LEFT + ((ms - start) / (end - start)) * (W - LEFT - 10);
  const rows = tiers.map((tier, i) => svg("text", { x: 6, y: 20 + i * ROW }, tier));
  const bars = timed.map((s) => {
    const i = tiers.indexOf(s.tier);
    const x0 = x(s.started_at_ms), x1 = Math.max(x(s.finished_at_ms || Date.now()), x0 + 3);
    return svg("g", {}, svg("rect", { x: x0, y: 8 + i * ROW, width: x1 - x0, height: ROW - 8, fill: COLORS[s.state] || "#8a94a6", opacity: 0.85 }),
      svg("title", {}, `step ${s.step_id} ${s.tool_name}: ${s.state}`));
  });
  const height = 16 + tiers.length * ROW;
  return svg("svg", { id: "timeline", width: W, height, viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": "steps over time per tier" }, rows, bars,
    svg("text", { x: W - 90, y: height - 4, class: "muted" }, `${((end - start) / 1000).toFixed(2)} s`));
}

function costTable(cost) {
  const rows = [];
  for (const [group, lines] of [["stage", cost.by_stage], ["tier", cost.by_tier], ["tool", cost.by_tool]]) {
    for (const [name, line] of Object.entries(lines || {})) {
      rows.push(el("tr", {}, el("td", {}, group), el("td", {}, name), el("td", { class: "num" }, line.calls),
        el("td", { class: "num" }, line.prompt_tokens), el("td", { class: "num" }, line.completion_tokens), el("td", { class: "num" }, usd(line.cost_usd))));
    }
  }
  rows.push(el("tr", {}, el("th", {}, "total"), el("th", {}, cost.cost_center), el("th", { class: "num" }, cost.total.calls),
    el("th", { class: "num" }, cost.total.prompt_tokens), el("th", { class: "num" }, cost.total.completion_tokens), el("th", { class: "num" }, usd(cost.total.cost_usd))));
  return el("table", { id: "cost" }, el("thead", {}, el("tr", {}, ["By", "Name", "Calls", "Prompt", "Completion", "Cost"].map((h) => el("th", {}, h)))), el("tbody", {}, rows));
}

async function taskPage(id) {
  const show = screen();
  const path = `/v1/tasks/${encodeURIComponent(id)}`;
  const render = async () => {
    const task = await api(path);
    const problems = task.steps.filter((s) => s.error).map((s) => el("li", {}, `step ${s.step_id} (${s.tool_name}) ${s.state}: ${s.error}`));
    show(`Task ${task.task_id}`,
      el("p", {}, badge(task.status), " ", task.task),
      el("p", { class: "muted" }, `cost ${usd(task.cost.total.cost_usd)} · ${took(task) || "running"} · plan by ${task.plan_source || "—"}`,
        task.retry_of ? el("span", {}, " · replay of ", el("a", { href: `#/task/${task.retry_of}` }, task.retry_of)) : null),
      el("h3", {}, "Plan"), dag(task.steps),
      el("h3", {}, "Timeline"), timeline(task),
      el("h3", {}, "Cost"), costTable(task.cost),
      el("h3", {}, "Answer"), el("div", { class: "answer", id: "answer" }, task.answer || "(none yet)"),
      task.error || problems.length ? el("h3", {}, "Errors") : null,
      task.error ? el("p", { class: "error" }, task.error) : null,
      problems.length ? el("ul", { class: "error" }, problems) : null);
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    return task;
  };
  await render();
  let pending = false;
  return follow(`${path}/events`, () => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; render().catch(failed); }, 100);
  });
}

// ---- tiers ----------------------------------------------------------------------------------

async function tiersPage() {
  const show = screen();
  const render = async () => {
    const report = await api("/v1/scaling");
    let workers = {};
    try {
      const ready = await fetch("/readyz").then((r) => r.json());
      workers = ready.workers || (ready.error && ready.error.details && ready.error.details.workers) || {};
    } catch (_) { /* readiness unknown */ }
    show("Tiers", el("table", { id: "tiers" },
      el("thead", {}, el("tr", {}, ["Tier", "Rule", "Ready", "In flight", "p95 TTFT", "Healthy endpoints", "Live workers", "Desired nodes", "Decision"].map((h) => el("th", {}, h)))),
      el("tbody", {}, report.tiers.map((t) => el("tr", { "data-tier": t.tier },
        el("td", {}, t.tier), el("td", {}, t.rule), el("td", { class: "num" }, t.queue_depth), el("td", { class: "num" }, t.in_flight),
        el("td", { class: "num" }, t.ttft_p95_seconds === null || t.ttft_p95_seconds === undefined ? "—" : `${t.ttft_p95_seconds.toFixed(3)} s`),
        el("td", { class: "num" }, t.healthy_endpoints), el("td", { class: "num" }, workers[t.tier] ?? "—"),
        el("td", { class: "num" }, t.desired_replicas), el("td", {}, `${t.action}: ${t.reason}`))))));
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  };
  await render();
  const timer = setInterval(() => render().catch((e) => (status.textContent = e.message)), 5000);
  return () => clearInterval(timer);
}

// ---- dead letters ---------------------------------------------------------------------------

async function deadLettersPage() {
  const show = screen();
  const page1 = await api("/v1/dead-letters?limit=100");
  const letters = page1.dead_letters;
  const groups = new Map();
  for (const l of letters) {
    const key = `${l.tool_name}\u0000${l.error.split("\n")[0].slice(0, 100)}`;
    groups.set(key, (groups.get(key) || 0) + 1);
  }
  const message = el("p", { id: "dlq-message", role: "status" });
  const act = async (letter, action) => {
    try {
      if (action === "replay") {
        const replayed = await api(`/v1/dead-letters/${encodeURIComponent(letter.id)}/replay?purge=true`, { method: "POST" });
        message.replaceChildren(`Dead letter ${letter.id} replayed as task `, el("a", { href: `#/task/${replayed.task_id}`, id: "replayed-task" }, replayed.task_id),
          ` (${replayed.reused_steps.length} reused, ${replayed.rerun_steps.length} run again).`);
      } else {
        await api(`/v1/dead-letters/${encodeURIComponent(letter.id)}`, { method: "DELETE" });
        message.textContent = `Dead letter ${letter.id} purged.`;
      }
      const row = [...document.querySelectorAll("tr[data-letter]")].find((r) => r.dataset.letter === letter.id);
      if (row) row.remove();
    } catch (error) {
      message.textContent = error.message;
      message.className = "error";
    }
  };
  show("Dead letters",
    el("h3", {}, "By tool and error"),
    el("table", { id: "dlq-groups" }, el("thead", {}, el("tr", {}, ["Count", "Tool", "Error"].map((h) => el("th", {}, h)))),
      el("tbody", {}, [...groups].sort((a, b) => b[1] - a[1]).map(([key, n]) => {
        const [tool, error] = key.split("\u0000");
        return el("tr", {}, el("td", { class: "num" }, n), el("td", {}, tool), el("td", { class: "error" }, error));
      }))),
    el("h3", {}, "Letters"), message,
    letters.length ? el("table", { id: "dlq" },
      el("thead", {}, el("tr", {}, ["Id", "Task", "Step", "Tool", "Tier", "Deliveries", "Attempts", "Error", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, letters.map((l) => el("tr", { "data-letter": l.id },
        el("td", {}, l.id), el("td", {}, el("a", { href: `#/task/${l.task_id}` }, l.task_id.slice(0, 8))), el("td", { class: "num" }, l.step_id),
        el("td", {}, l.tool_name), el("td", {}, l.tier), el("td", { class: "num" }, l.deliveries), el("td", { class: "num" }, l.attempts),
        el("td", { class: "error" }, l.error),
        el("td", {}, el("button", { class: "replay", onclick: () => act(l, "replay") }, "Replay"), " ",
          el("button", { class: "purge", onclick: () => act(l, "purge") }, "Purge"))))))
      : el("p", { class: "muted" }, "No dead letters."));
  status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  return () => {};
}

// ---- spend ----------------------------------------------------------------------------------

async function spendPage() {
  const show = screen();
  const spend = await api("/v1/spend");
  const line = (name, l) => el("tr", {}, el("td", {}, name), el("td", { class: "num" }, usd(l.spent_usd)), el("td", { class: "num" }, usd(l.reserved_usd)),
    el("td", { class: "num" }, l.budget_usd === null || l.budget_usd === undefined ? "none" : usd(l.budget_usd)),
    el("td", { class: "num" }, l.budget_usd === null || l.budget_usd === undefined ? "—" : usd(Number(l.budget_usd) - Number(l.spent_usd) - Number(l.reserved_usd))));
  // The month's tasks against a ReAct loop: the same tokens on the planner tier are a lower bound
  // of what a loop would cost (it also re-sends its history), so the savings are never overstated.
  const month = await api(`/v1/spend/export?month=${encodeURIComponent(spend.month)}&format=json`);
  const savings = month.savings_vs_react_floor === null
    ? el("p", { id: "savings", class: "muted" }, "No model calls this month yet: nothing to compare with ReAct.")
    : el("p", { id: "savings" }, `This month's ${month.tasks_counted} tasks cost ${usd(month.rows_total_usd)}; a ReAct loop on the planner tier would have cost at least ${usd(month.react_floor_usd)}: `,
      el("strong", {}, `${Math.floor(Number(month.savings_vs_react_floor) * 100)}% saved`),
      month.complete ? "." : " (the oldest tasks of the month were not counted).");
  show(`Spend of ${spend.tenant}, ${spend.month}`, el("table", { id: "spend" },
    el("thead", {}, el("tr", {}, ["Cost center", "Spent", "Reserved", "Budget", "Left"].map((h) => el("th", {}, h)))),
    el("tbody", {}, line("all (tenant)", spend.total), Object.entries(spend.cost_centers).map(([name, l]) => line(name, l)))),
    savings);
  status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  return () => {};
}

// ---- routing --------------------------------------------------------------------------------

async function route() {
  stopLive();
  stopLive = () => {};
  const mine = ++routing;
  const [, name, id] = (location.hash || "#/tasks").split("/");
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.page === name);
  const pages = { tasks: tasksPage, task: () => taskPage(decodeURIComponent(id || "")), tiers: tiersPage, "dead-letters": deadLettersPage, spend: spendPage };
  try {
    const stop = (await (pages[name] || tasksPage)()) || (() => {});
    if (mine === routing) stopLive = stop;
    else stop(); // the user moved on while this page loaded
  } catch (error) {
    if (mine === routing) failed(error);
  }
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = document.getElementById("api-key").value.trim();
  if (value) localStorage.setItem(KEY, value);
  else localStorage.removeItem(KEY);
  route();
});
window.addEventListener("hashchange", route);
route();
