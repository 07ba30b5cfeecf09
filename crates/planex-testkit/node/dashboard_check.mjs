// Drives the planex dashboard in headless Chromium (playwright-core, Debian's chromium) for
// crates/planex/tests/dashboard.rs: every page loads with no console error, a running task's step
// changes state on the page without a reload (on the tasks list, pushed by GET /v1/tasks/events; on
// the task's page, by its own event stream), the dead-letter page replays a letter, and each page
// is saved as a screenshot. Any request that is not to 127.0.0.1 is aborted and reported.
//
// Usage: node dashboard_check.mjs BASE_URL TASK_JSON OUT_DIR
// TASK_JSON is a `POST /v1/tasks` body the page submits itself twice: the tasks list follows the
// first to its end, the task's page the second (its last step is drawn before it can have run).
// Prints one JSON line: {console_errors, blocked, list_task_id, list_first_state, list_last_state,
// list_streams (requests of GET /v1/tasks/events), task_id, first_state, last_state,
// replayed_task, savings (the spend page's ReAct line), screenshots}.

import { chromium } from "playwright-core";
import path from "node:path";

const [base, taskJson, outDir] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 60_000;

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const result = { console_errors: [], blocked: [], screenshots: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    result.blocked.push(url.href);
    return route.abort();
  });
  const page = await context.newPage();
  result.list_streams = 0;
  page.on("request", (request) => {
    if (new URL(request.url()).pathname === "/v1/tasks/events") result.list_streams += 1;
  });
  page.on("console", (message) => {
    if (message.type() === "error") result.console_errors.push(message.text());
  });
  page.on("pageerror", (error) => result.console_errors.push(String(error)));
  const shot = async (name) => {
    const file = path.join(outDir, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    result.screenshots.push(file);
  };

  const submit = () => page.evaluate(async (body) => {
    const response = await fetch("/v1/tasks", { method: "POST", headers: { "content-type": "application/json" }, body });
    return response.json();
  }, taskJson);

  await page.goto(`${base}/#/tasks`);
  await page.waitForSelector("#tasks tr[data-task]", { timeout: WAIT });
  // A task submitted while the list is shown: its row appears and turns complete (after a chain
  // of 1.5 s calls) without a reload; the list only refreshes on its event stream's changes.
  const listed = await submit();
  result.list_task_id = listed.task_id;
  const row = `#tasks tr[data-task="${listed.task_id}"] [data-state]`;
  await page.waitForSelector(row, { timeout: WAIT });
  result.list_first_state = await page.getAttribute(row, "data-state");
  await page.waitForSelector(`#tasks tr[data-task="${listed.task_id}"] [data-state="complete"]`, { timeout: WAIT });
  result.list_last_state = await page.getAttribute(row, "data-state");
  await shot("tasks");

  // A task submitted from the page and followed at once: its last step is not complete when the
  // page first draws it, and turns complete on the page, pushed by the task's event stream (the
  // page is never reloaded).
  const submitted = await submit();
  result.task_id = submitted.task_id;
  const last = JSON.parse(taskJson).plan.steps.length;
  await page.goto(`${base}/#/task/${submitted.task_id}`);
  const node = `#dag g.node[data-step="${last}"]`;
  await page.waitForSelector(node, { timeout: WAIT });
  result.first_state = await page.getAttribute(node, "data-state");
  await page.waitForSelector(`#dag g.node[data-step="${last}"][data-state="complete"]`, { timeout: WAIT });
  result.last_state = await page.getAttribute(node, "data-state");
  await page.waitForSelector("#timeline", { timeout: WAIT });
  await shot("task");

  await page.goto(`${base}/#/tiers`);
  await page.waitForSelector("#tiers tr[data-tier]", { timeout: WAIT });
  await shot("tiers");

  await page.goto(`${base}/#/dead-letters`);
  await page.waitForSelector("#dlq tr[data-letter] button.replay", { timeout: WAIT });
  await shot("dead-letters");
  await page.click("#dlq tr[data-letter] button.replay");
  await page.waitForSelector("#replayed-task", { timeout: WAIT });
  result.replayed_task = (await page.textContent("#replayed-task")).trim();
  await shot("dead-letters-replayed");

  await page.goto(`${base}/#/spend`);
  await page.waitForSelector("#spend tbody tr", { timeout: WAIT });
  await page.waitForSelector("#savings", { timeout: WAIT });
  result.savings = (await page.textContent("#savings")).trim();
  await shot("spend");
} catch (error) {
  result.failure = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.failure ? 1 : 0);
