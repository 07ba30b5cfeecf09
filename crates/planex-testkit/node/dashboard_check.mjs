// Drives the planex dashboard in headless Chromium (playwright-core, Debian's chromium) for
// crates/planex/tests/dashboard.rs: every page loads with no console error, a running task's step
// changes state on the page without a reload, the dead-letter page replays a letter, and each page
// is saved as a screenshot. Any request that is not to 127.0.0.1 is aborted and reported.
//
// Usage: node dashboard_check.mjs BASE_URL TASK_JSON OUT_DIR
// TASK_JSON is a `POST /v1/tasks` body the page submits itself, then follows: its last step is
// drawn before it can have run. Prints one JSON line: {console_errors, blocked, task_id,
// first_state, last_state, replayed_task, savings (the spend page's ReAct line), screenshots}.

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
  page.on("console", (message) => {
    if (message.type() === "error") result.console_errors.push(message.text());
  });
  page.on("pageerror", (error) => result.console_errors.push(String(error)));
  const shot = async (name) => {
    const file = path.join(outDir, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    result.screenshots.push(file);
  };

  await page.goto(`${base}/#/tasks`);
  await page.waitForSelector("#tasks tr[data-task]", { timeout: WAIT });
  await shot("tasks");

  // A task submitted from the page and followed at once: its last step (after a chain of
  // 1.5 s calls) is not complete when the page first draws it, and turns complete on the page,
  // pushed by the task's event stream (the page is never reloaded).
  const submitted = await page.evaluate(async (body) => {
    const response = await fetch("/v1/tasks", { method: "POST", headers: { "content-type": "application/json" }, body });
    return response.json();
  }, taskJson);
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
