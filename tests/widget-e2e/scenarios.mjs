// Browser end-to-end scenarios for the chat widget (web/widget.js), run against a live Switchboard whose
// model is the scripted mock upstream. The Rust test that starts them sets the expectations in env.
//
//   node tests/widget-e2e/scenarios.mjs <stream|xss|approval|resume|feedback|branches|prompts|input>
//
// Env: SWITCHBOARD_URL (the demo page `/` embeds the widget, open, with a valid token), SCREENSHOT_DIR
// (optional), EXPECT_ANSWER (every scenario but resume's proxy setup), EXPECT_SOURCE (stream), EXPECT_TOOL (approval),
// EXPECT_REGENERATED, EDITED_QUESTION and EXPECT_EDITED_ANSWER (branches), PROMPT, PROMPT_ARGUMENTS (JSON) and
// EXPECT_PROMPT_TEXT (prompts), EXPECT_QUESTION and INPUT_ANSWER (JSON; input), WIDGET_WAIT_MS (default 30000),
// CHROMIUM_PATH (default /usr/bin/chromium). Exit 0 on success; 1 with a message saying what was expected
// and what was seen.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';

const WAIT_MS = Number(process.env.WIDGET_WAIT_MS || 30_000);
const POLL_MS = 25;
// Chromium's flags: no sandbox (root in CI), and no background traffic: the machine has no internet, and
// without these Chromium floods refused connections.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

class Failure extends Error {}

function env(name) {
  const value = process.env[name];
  if (!value) throw new Failure(`the environment variable ${name} is required for this scenario`);
  return value;
}

/** Whitespace-insensitive text, as both the answer's markdown rendering and the mock's pieces vary it. */
const normalise = (text) => String(text ?? '').replace(/\s+/g, ' ').trim();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const show = (text) => JSON.stringify(text);

// ---------------------------------------------------------------- reading the widget from the page

/** Runs in the page: a snapshot of what the widget shows (the shadow root is open). */
function snapshotInPage() {
  const host = document.querySelector('#switchboard-widget, .switchboard-widget');
  const root = host && host.shadowRoot;
  if (!root) return null;
  const all = (selector) => [...root.querySelectorAll(selector)];
  const answers = all('[data-testid="message"][data-role="assistant"] [data-testid="answer-text"]');
  const last = answers[answers.length - 1];
  return {
    state: host.dataset.state,
    panelVisible: Boolean(root.querySelector('[data-testid="panel"]')?.checkVisibility?.()),
    answer: last ? last.innerText : null,
    answers: answers.length,
    status: root.querySelector('[data-testid="status"]')?.innerText ?? '',
    errors: all('[data-testid="error"]').map((node) => node.innerText),
    citations: all('[data-testid="citation"]').map((node) => node.innerText),
    feedback: all('[data-testid="feedback-note"]').map((node) => node.innerText).join(' | '),
    questions: all('[data-testid="message"][data-role="user"] .bubble').map((node) => node.innerText),
    // The versions shown, per message of the branch ('' for a message with one version).
    versions: all('[data-testid="message"][data-role]').map((node) => node.querySelector('[data-testid="version"]')?.innerText ?? ''),
    toolCalls: all('[data-testid="tool-call"]').map((node) => ({ status: node.dataset.status, text: node.innerText })),
    visibleText: root.querySelector('[data-testid="panel"]')?.innerText ?? '',
  };
}

const snapshot = (page) => page.evaluate(snapshotInPage);

/** Polls the widget until `done(snapshot)` is true; an error shown by the widget fails at once. */
async function waitFor(page, what, done, { timeout = WAIT_MS, allowErrors = false } = {}) {
  const deadline = Date.now() + timeout;
  let last = null;
  while (Date.now() < deadline) {
    last = await snapshot(page);
    if (last && done(last)) return last;
    if (last && !allowErrors && last.errors.length) {
      throw new Failure(`while waiting for ${what}, the widget showed an error: ${show(last.errors.join(' | '))}`);
    }
    await sleep(POLL_MS);
  }
  throw new Failure(`timed out after ${timeout} ms waiting for ${what}; last seen: ${show(last && {
    state: last.state, status: last.status, answer: last.answer, toolCalls: last.toolCalls })}`);
}

/** Records, inside the page, every distinct length the last answer's text goes through. */
async function recordAnswerGrowth(page) {
  await page.evaluate(() => {
    const host = document.querySelector('#switchboard-widget, .switchboard-widget');
    const log = host.shadowRoot.querySelector('[data-testid="messages"]');
    const seen = [];
    const states = [];
    const take = () => {
      const answers = log.querySelectorAll('[data-role="assistant"] [data-testid="answer-text"]');
      const text = answers.length ? answers[answers.length - 1].innerText : '';
      if (text && seen[seen.length - 1] !== text) seen.push(text);
    };
    new MutationObserver(take).observe(log, { childList: true, subtree: true, characterData: true });
    new MutationObserver(() => {
      if (states[states.length - 1] !== host.dataset.state) states.push(host.dataset.state);
    }).observe(host, { attributes: true, attributeFilter: ['data-state'] });
    window.__widgetE2E = { seen, states };
  });
  return async () => page.evaluate(() => window.__widgetE2E);
}

async function screenshot(page, name) {
  const dir = process.env.SCREENSHOT_DIR;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, name) });
  console.log(`screenshot: ${path.join(dir, name)}`);
}

// ---------------------------------------------------------------- driving the widget

async function openDemo(page, url) {
  await page.goto(new URL('/', url).href, { waitUntil: 'load', timeout: WAIT_MS });
  const opened = await waitFor(page, 'the widget to mount on the demo page', (s) => s !== null, { allowErrors: true });
  if (!opened.panelVisible) await page.locator('[data-testid="launcher"]').click();
  await waitFor(page, 'the chat panel to be visible', (s) => s.panelVisible);
}

/** Types a question and presses Enter, as a person would. */
async function ask(page, question) {
  const input = page.locator('[data-testid="input"]');
  await input.click();
  await input.fill(question);
  await input.press('Enter');
  await waitFor(page, 'the question to appear in the conversation',
    (s) => s.visibleText.includes(question) && s.answers > 0);
}

function expectAnswer(seen, expected, what) {
  if (normalise(seen) !== normalise(expected)) {
    throw new Failure(`${what}: expected the answer ${show(normalise(expected))}\n  but the widget shows ${show(normalise(seen))}`);
  }
}

/** The turn is over (the widget is idle again with an answer shown); the caller then compares the text. */
const finished = (s) => s.state === 'idle' && s.answer !== null;

// ---------------------------------------------------------------- scenarios

async function stream(page) {
  const expected = env('EXPECT_ANSWER');
  const source = env('EXPECT_SOURCE');
  await openDemo(page, env('SWITCHBOARD_URL'));
  const growth = await recordAnswerGrowth(page);
  await ask(page, process.env.QUESTION || 'How do I rotate the master key?');

  // Mid-answer: a good part of the text, not all of it (or the answer, should it finish first).
  const final = normalise(expected);
  const partial = await waitFor(page, 'the answer to be under way',
    (s) => normalise(s.answer).length >= final.length * 0.4 || s.state === 'idle');
  if (normalise(partial.answer) !== final) await screenshot(page, 'widget-mid-answer.png');
  else console.log('note: the answer was complete at the first look; no mid-answer screenshot');

  const done = await waitFor(page, `the whole answer ${show(expected)}`, finished, { timeout: WAIT_MS });
  expectAnswer(done.answer, expected, 'final answer');

  const { seen } = await growth();
  const partials = [...new Set(seen.map(normalise))].filter((text) => text && text !== final);
  const notPrefix = partials.find((text) => !final.startsWith(text));
  if (notPrefix !== undefined) {
    throw new Failure(`a partial answer was not a prefix of the final one (doubled or garbled text?): ${show(notPrefix)}`);
  }
  const lengths = [...new Set(partials.map((text) => text.length))];
  if (lengths.length < 3) {
    throw new Failure(`expected the answer to grow through at least 3 partial lengths before completing; saw ${show(lengths)}`);
  }
  console.log(`answer grew through ${lengths.length} partial lengths: ${lengths.slice(0, 12).join(', ')}${lengths.length > 12 ? ', …' : ''}`);

  const cited = await waitFor(page, `a citation of ${show(source)}`, (s) => s.citations.some((c) => c.includes(source)), { timeout: 5_000 })
    .catch(async () => { throw new Failure(`expected a citation with ${show(source)}; citations: ${show((await snapshot(page)).citations)}`); });
  console.log(`citations: ${cited.citations.join(' | ')}`);
  await screenshot(page, 'widget-answered.png');
}

async function xss(page) {
  const expected = env('EXPECT_ANSWER');
  await openDemo(page, env('SWITCHBOARD_URL'));
  await ask(page, 'Show me some HTML.');
  const done = await waitFor(page, 'the whole answer', finished);
  expectAnswer(done.answer, expected, 'the markup must show as text');
  await sleep(500); // time for an injected onerror handler to have fired, had one been created
  const found = await page.evaluate(() => {
    const root = document.querySelector('#switchboard-widget, .switchboard-widget').shadowRoot;
    const log = root.querySelector('[data-testid="messages"]');
    return {
      pwned: typeof window.__pwned === 'undefined' ? 'undefined' : String(window.__pwned),
      elements: [...log.querySelectorAll('img, script, iframe, object, embed, svg, [onerror], [onload]')].map((n) => n.outerHTML),
      textHasScript: log.innerText.includes('<script>'),
      textHasImg: /<img\b[^>]*onerror/i.test(log.innerText),
    };
  });
  if (found.pwned !== 'undefined') throw new Failure(`window.__pwned was set to ${show(found.pwned)}: the markup ran`);
  if (found.elements.length) throw new Failure(`the message list contains active elements: ${show(found.elements)}`);
  const wantsScript = expected.includes('<script>');
  const wantsImg = /<img\b[^>]*onerror/i.test(expected);
  if ((wantsScript && !found.textHasScript) || (wantsImg && !found.textHasImg)) {
    throw new Failure(`the literal markup is not visible as text; the widget shows ${show(done.answer)}`);
  }
  console.log('the markup is shown as text, no element was created, window.__pwned is undefined');
  await screenshot(page, 'widget-xss.png');
}

async function approval(page) {
  const expected = env('EXPECT_ANSWER');
  const tool = env('EXPECT_TOOL');
  await openDemo(page, env('SWITCHBOARD_URL'));
  await ask(page, 'Please use the tool.');
  const waiting = await waitFor(page, `the tool call ${show(tool)} awaiting approval`, (s) => s.toolCalls.some(
    (call) => call.status === 'awaiting-approval' && call.text.includes(tool)));
  console.log(`awaiting approval: ${show(waiting.toolCalls)}`);
  const approve = page.locator('[data-testid="approve"]');
  await approve.waitFor({ state: 'visible', timeout: WAIT_MS });
  await waitFor(page, 'the run to pause (data-state awaiting-approval)', (s) => s.state === 'awaiting-approval');
  await screenshot(page, 'widget-awaiting-approval.png');
  await approve.click();
  const done = await waitFor(page, `the answer after approval ${show(expected)}`, finished);
  expectAnswer(done.answer, expected, 'answer after approval');
  const call = done.toolCalls.find((c) => c.text.includes(tool));
  if (!call || call.status !== 'done') {
    throw new Failure(`expected the tool call ${show(tool)} to be shown as done; tool calls: ${show(done.toolCalls)}`);
  }
  console.log(`tool call: ${show(call)}`);
  await screenshot(page, 'widget-approved.png');
}

async function resume(page) {
  const expected = env('EXPECT_ANSWER');
  const proxy = await startProxy(new URL(env('SWITCHBOARD_URL')));
  try {
    await openDemo(page, proxy.url);
    const growth = await recordAnswerGrowth(page);
    await ask(page, 'Tell me everything, slowly.');
    const words = normalise(expected).split(' ').length;
    const some = await waitFor(page, 'a few words of the answer', (s) => normalise(s.answer).split(' ').length >= Math.min(5, words - 1)
      && normalise(s.answer) !== normalise(expected));
    const droppedAt = proxy.requests.length;
    const cut = proxy.dropAll();
    console.log(`dropped ${cut} proxied connections with ${show(normalise(some.answer))} shown`);

    const done = await waitFor(page, 'the whole answer after the reconnection', finished);
    expectAnswer(done.answer, expected, 'answer after resuming (no lost or doubled words)');
    const resumed = proxy.requests.slice(droppedAt).find((r) => r.method === 'GET'
      && /^\/api\/v1\/runs\/[^/]+\/events/.test(r.path) && r.headers['last-event-id'] !== undefined);
    if (!resumed) {
      throw new Failure(`expected a GET /api/v1/runs/{id}/events with Last-Event-ID after the drop; requests seen after it: ${
        show(proxy.requests.slice(droppedAt).map((r) => `${r.method} ${r.path} ${JSON.stringify(r.headers['last-event-id'] ?? null)}`))}`);
    }
    const { states } = await growth();
    console.log(`resumed with ${resumed.method} ${resumed.path} Last-Event-ID: ${resumed.headers['last-event-id']}; states: ${states.join(' → ')}`);
    await screenshot(page, 'widget-resumed.png');
  } finally {
    proxy.close();
  }
}

async function feedback(page) {
  const expected = env('EXPECT_ANSWER');
  const url = env('SWITCHBOARD_URL');
  await openDemo(page, url);
  await ask(page, 'How do I embed the widget?');
  const done = await waitFor(page, 'the whole answer', finished);
  expectAnswer(done.answer, expected, 'the answer to rate');
  const down = page.locator('[data-testid="feedback-down"]').last();
  await down.waitFor({ state: 'visible', timeout: WAIT_MS });
  await down.click();
  await waitFor(page, 'the widget to say the feedback was saved', (s) => s.feedback.includes('Thanks'));
  if (await down.getAttribute('aria-pressed') !== 'true') throw new Failure('the thumbs down is not shown as pressed');
  await screenshot(page, 'widget-feedback.png');
  // After a reload, the stored answer offers its thumbs again.
  await page.reload({ waitUntil: 'load', timeout: WAIT_MS });
  await openDemo(page, url);
  await waitFor(page, 'the stored answer', (s) => s.answer !== null && normalise(s.answer) === normalise(expected));
  await page.locator('[data-testid="feedback-up"]').last().waitFor({ state: 'visible', timeout: WAIT_MS });
  console.log('rated the answer down; after a reload the stored answer offers feedback again');
}

/** Regenerates an answer, switches between its versions, edits the question, and switches back. */
async function branches(page) {
  const first = env('EXPECT_ANSWER');
  const regenerated = env('EXPECT_REGENERATED');
  const editedQuestion = env('EDITED_QUESTION');
  const editedAnswer = env('EXPECT_EDITED_ANSWER');
  const question = 'How do I embed the widget?';
  await openDemo(page, env('SWITCHBOARD_URL'));
  await ask(page, question);
  const done = await waitFor(page, 'the first answer', finished);
  expectAnswer(done.answer, first, 'the first answer');

  const regenerate = page.locator('[data-testid="regenerate"]').last();
  await regenerate.waitFor({ state: 'visible', timeout: WAIT_MS });
  await regenerate.click();
  const again = await waitFor(page, 'the regenerated answer, version 2/2',
    (s) => finished(s) && s.versions.join(',') === ',2/2' && normalise(s.answer) === normalise(regenerated));
  console.log(`regenerated: versions ${show(again.versions)}`);
  await screenshot(page, 'widget-regenerated.png');

  await page.locator('[data-testid="version-prev"]').last().click();
  await waitFor(page, 'the first answer again, version 1/2',
    (s) => finished(s) && s.versions.join(',') === ',1/2' && normalise(s.answer) === normalise(first));

  await page.locator('[data-testid="edit"]').last().click();
  const editor = page.locator('[data-testid="edit-input"]');
  await editor.waitFor({ state: 'visible', timeout: WAIT_MS });
  await editor.fill(editedQuestion);
  await page.locator('[data-testid="edit-send"]').click();
  const edited = await waitFor(page, 'the answer to the edited question, the question at version 2/2',
    (s) => finished(s) && s.versions.join(',') === '2/2,' && normalise(s.answer) === normalise(editedAnswer));
  if (edited.questions.length !== 1 || normalise(edited.questions[0]) !== normalise(editedQuestion)) {
    throw new Failure(`expected only the edited question on its branch; questions shown: ${show(edited.questions)}`);
  }
  await screenshot(page, 'widget-edited.png');

  // Back to the first question: its branch, down to its most recent answer (the regenerated one).
  await page.locator('[data-testid="version-prev"]').first().click();
  const back = await waitFor(page, 'the first question again, version 1/2, with its latest answer',
    (s) => finished(s) && s.versions.join(',') === '1/2,2/2' && normalise(s.answer) === normalise(regenerated));
  if (normalise(back.questions[0]) !== normalise(question)) {
    throw new Failure(`expected the first question back; questions shown: ${show(back.questions)}`);
  }
  console.log(`switched versions: ${show(back.versions)}`);
}

/** Picks a prompt in the composer, fills in its arguments, and sends what it puts in the message box. */
async function prompts(page) {
  const expected = env('EXPECT_ANSWER');
  const name = env('PROMPT');
  const argumentsGiven = JSON.parse(env('PROMPT_ARGUMENTS'));
  const filled = env('EXPECT_PROMPT_TEXT');
  await openDemo(page, env('SWITCHBOARD_URL'));
  const button = page.locator('[data-testid="prompts-button"]');
  await button.waitFor({ state: 'visible', timeout: WAIT_MS });
  const panel = page.locator('[data-testid="prompts"]');
  const focused = () => page.evaluate(() => {
    const active = document.querySelector('#switchboard-widget, .switchboard-widget').shadowRoot.activeElement;
    return active ? active.dataset.testid || active.tagName : null;
  });

  // Escape closes the list, and focus goes back to the button that opened it.
  await button.click();
  await panel.waitFor({ state: 'visible', timeout: WAIT_MS });
  if (await button.getAttribute('aria-expanded') !== 'true') throw new Failure('the open prompts button is not aria-expanded');
  if (await focused() !== 'prompt') throw new Failure(`opening the prompts should focus the first one; focus is on ${show(await focused())}`);
  await page.keyboard.press('Escape');
  await panel.waitFor({ state: 'hidden', timeout: WAIT_MS });
  if (!(await snapshot(page)).panelVisible) throw new Failure('Escape in the prompts closed the whole chat');
  if (await focused() !== 'prompts-button') throw new Failure(`after Escape, focus is on ${show(await focused())}`);

  await button.click();
  const picked = page.locator(`[data-testid="prompt"][data-name="${name}"]`);
  await picked.waitFor({ state: 'visible', timeout: WAIT_MS });
  await screenshot(page, 'widget-prompts.png');
  await picked.click();
  const insert = page.locator('[data-testid="prompt-insert"]');
  await insert.waitFor({ state: 'visible', timeout: WAIT_MS });
  if (!(await insert.isDisabled())) throw new Failure('Insert is enabled before the required arguments are filled in');
  const fields = await page.locator('[data-testid="prompt-argument"]').evaluateAll((inputs) => inputs.map((input) => ({
    name: input.dataset.name, required: input.required, label: input.labels[0]?.innerText ?? '' })));
  console.log(`arguments asked for: ${show(fields)}`);
  for (const field of fields) {
    if (!field.label.includes(field.name)) throw new Failure(`the field ${show(field.name)} has no label naming it: ${show(fields)}`);
  }
  await screenshot(page, 'widget-prompt-arguments.png');
  for (const [argument, value] of Object.entries(argumentsGiven)) {
    await page.locator(`[data-testid="prompt-argument"][data-name="${argument}"]`).fill(value);
  }
  if (await insert.isDisabled()) throw new Failure('Insert is still disabled with the required arguments filled in');
  await insert.click();

  // The filled-in prompt waits in the message box: nothing is sent until the person sends it.
  const input = page.locator('[data-testid="input"]');
  const deadline = Date.now() + WAIT_MS;
  while (normalise(await input.inputValue()) !== normalise(filled)) {
    const seen = await snapshot(page);
    if (seen.errors.length) throw new Failure(`filling in the prompt showed an error: ${show(seen.errors.join(' | '))}`);
    if (Date.now() > deadline) throw new Failure(`expected the message box to hold ${show(filled)}; it holds ${show(await input.inputValue())}`);
    await sleep(POLL_MS);
  }
  await panel.waitFor({ state: 'hidden', timeout: WAIT_MS });
  if (await focused() !== 'input') throw new Failure(`after inserting the prompt, focus is on ${show(await focused())}`);
  const before = await snapshot(page);
  if (before.questions.length || before.answers) throw new Failure(`the prompt was sent without the person: ${show(before.questions)}`);
  await screenshot(page, 'widget-prompt-filled.png');
  console.log(`the message box holds ${show(await input.inputValue())}`);

  await input.press('Enter');
  const done = await waitFor(page, 'the answer to the prompt', (s) => finished(s) && s.questions.length === 1);
  if (normalise(done.questions[0]) !== normalise(filled)) throw new Failure(`the question sent was ${show(done.questions[0])}`);
  expectAnswer(done.answer, expected, 'the answer to the prompt');
}

/**
 * A tool's server asks a question (the booking server: which room, how many nights): the widget shows it
 * as a form, again after a reload; answers that do not fit are refused by the form, or by the server
 * (its 422 said by the form, which stays); INPUT_ANSWER fills it in and the run goes on to the answer.
 */
async function input(page) {
  const expected = env('EXPECT_ANSWER');
  const question = env('EXPECT_QUESTION');
  const answer = JSON.parse(env('INPUT_ANSWER'));
  const url = env('SWITCHBOARD_URL');
  const sent = []; // the bodies of POST /api/v1/tool-calls/{id}/input
  page.on('request', (request) => {
    if (request.method() === 'POST' && /\/api\/v1\/tool-calls\/[^/]+\/input$/.test(new URL(request.url()).pathname)) {
      sent.push(request.postDataJSON());
    }
  });
  const asking = async (what) => {
    const seen = await waitFor(page, what, (s) => s.state === 'awaiting-approval'
      && s.toolCalls.some((call) => call.status === 'awaiting-input' && normalise(call.text).includes(normalise(question))));
    await page.locator('[data-testid="input-form"]').waitFor({ state: 'visible', timeout: WAIT_MS });
    return seen;
  };
  await openDemo(page, url);
  await ask(page, 'Book a room for Ada, please.');
  const first = await asking(`the question ${show(question)} in a form`);
  console.log(`asked: ${show(first.toolCalls)}; status: ${show(first.status)}`);

  // A reload in the middle of the pause finds the question again (the run's events are replayed).
  await page.reload({ waitUntil: 'load', timeout: WAIT_MS });
  await openDemo(page, url);
  await asking('the question again after a reload');
  const shownQuestion = await page.locator('[data-testid="input-question"]').innerText();
  if (normalise(shownQuestion) !== normalise(question)) throw new Failure(`the form asks ${show(shownQuestion)}, not ${show(question)}`);

  // One labelled control per field: a select for the enum, a whole-number input within the bounds.
  const fields = await page.locator('[data-testid="input-field"]').evaluateAll((controls) => controls.map((control) => ({
    name: control.dataset.name, tag: control.tagName.toLowerCase(), type: control.type, required: control.required,
    min: control.min, max: control.max, step: control.step, label: control.labels[0]?.innerText ?? '',
    options: control.tagName === 'SELECT' ? [...control.options].map((option) => option.text) : null })));
  console.log(`fields: ${show(fields)}`);
  for (const name of Object.keys(answer)) {
    const field = fields.find((f) => f.name === name);
    if (!field) throw new Failure(`no field ${show(name)} in the form: ${show(fields)}`);
    if (!field.label || !field.required) throw new Failure(`the field ${show(name)} should be labelled and required: ${show(field)}`);
  }
  const room = fields.find((f) => f.name === 'room');
  const nights = fields.find((f) => f.name === 'nights');
  if (room && (room.tag !== 'select' || !room.options.includes('double'))) throw new Failure(`room should be a select with its choices: ${show(room)}`);
  if (nights && (nights.type !== 'number' || nights.step !== '1' || nights.max !== '14')) {
    throw new Failure(`nights should be a whole-number input up to 14: ${show(nights)}`);
  }
  await screenshot(page, 'widget-awaiting-input.png');

  const submit = page.locator('[data-testid="input-submit"]');
  const note = page.locator('[data-testid="input-error"]');
  const fill = async (values) => {
    for (const [name, value] of Object.entries(values)) {
      const control = page.locator(`[data-testid="input-field"][data-name="${name}"]`);
      const tag = await control.evaluate((node) => node.tagName);
      if (tag === 'SELECT') await control.selectOption({ label: String(value) });
      else if (await control.getAttribute('type') === 'checkbox') await control.setChecked(value === true || value === 'true');
      else await control.fill(String(value));
    }
  };
  const refusedByTheForm = async (what) => {
    await submit.click();
    const said = normalise(await note.innerText());
    if (!said) throw new Failure(`${what}: the form said nothing`);
    if (sent.length) throw new Failure(`${what}: the answer was sent anyway: ${show(sent)}`);
    console.log(`${what}: ${show(said)}`);
    return said;
  };
  // Nothing chosen: the required fields are missing.
  await refusedByTheForm('an empty form');
  // Out of bounds: the browser's own check.
  await fill({ ...answer, nights: 30 });
  const local = await refusedByTheForm('30 nights');
  // The server checks too: with the form's bound taken away, 30 goes to it, and its refusal is said by the
  // form, which stays for another try.
  await page.locator('[data-testid="input-field"][data-name="nights"]').evaluate((node) => node.removeAttribute('max'));
  await submit.click();
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const said = normalise(await note.innerText());
    if (sent.length === 1 && said && said !== local && !(await submit.isDisabled())) break;
    const seen = await snapshot(page);
    if (seen.errors.length) throw new Failure(`sending 30 nights showed an error: ${show(seen.errors.join(' | '))}`);
    if (Date.now() > deadline) throw new Failure(`the server's refusal of 30 nights was not shown by the form (sent: ${show(sent)}; the form says ${show(said)})`);
    await sleep(POLL_MS);
  }
  console.log(`the server refused ${show(sent[0])}: ${show(normalise(await note.innerText()))}`);
  await screenshot(page, 'widget-input-refused.png');

  await fill(answer);
  await submit.click();
  const done = await waitFor(page, `the answer after the question ${show(expected)}`, finished);
  expectAnswer(done.answer, expected, 'answer after the question');
  const accepted = sent[sent.length - 1];
  if (accepted.action !== 'accept' || typeof accepted.content?.nights !== 'number') {
    throw new Failure(`expected an accepted answer with nights as a number; sent: ${show(accepted)}`);
  }
  const call = done.toolCalls[0];
  if (!call || call.status !== 'done') throw new Failure(`expected the tool call shown as done; tool calls: ${show(done.toolCalls)}`);
  if (await page.locator('[data-testid="input-form"]').count()) throw new Failure('the form is still shown after the call completed');
  console.log(`answered ${show(accepted)}; tool call: ${show(call)}`);
  await screenshot(page, 'widget-input-answered.png');
}

// ---------------------------------------------------------------- a TCP proxy that can cut connections

/** Forwards 127.0.0.1:<random> to target, records every HTTP request head, and can drop all connections. */
function startProxy(target) {
  const pairs = new Set();
  const requests = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 80), target.hostname);
    const pair = { client, upstream };
    pairs.add(pair);
    const parse = requestHeadParser((head) => requests.push(head));
    client.on('data', parse);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); pairs.delete(pair); };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      requests,
      dropAll() {
        const count = pairs.size;
        for (const { client, upstream } of pairs) { client.destroy(); upstream.destroy(); }
        pairs.clear();
        return count;
      },
      close() { this.dropAll(); server.close(); },
    }));
  });
}

/** Parses the request heads of one connection (keep-alive: several requests), skipping bodies by Content-Length. */
function requestHeadParser(onHead) {
  let buffer = Buffer.alloc(0);
  let skip = 0;
  return (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, buffer.length);
        buffer = buffer.subarray(n);
        skip -= n;
        if (skip > 0) return;
      }
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [line, ...headerLines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
      buffer = buffer.subarray(end + 4);
      const [method, target] = line.split(' ');
      const headers = {};
      for (const header of headerLines) {
        const colon = header.indexOf(':');
        if (colon > 0) headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
      }
      onHead({ method, path: target, headers });
      skip = Number(headers['content-length'] || 0);
    }
  };
}

// ---------------------------------------------------------------- main

const SCENARIOS = { stream, xss, approval, resume, feedback, branches, prompts, input };

async function main() {
  const name = process.argv[2];
  if (!SCENARIOS[name]) {
    console.error(`usage: node scenarios.mjs <${Object.keys(SCENARIOS).join('|')}>`);
    return 2;
  }
  // However a wait misbehaves, the process ends: no hung test.
  const watchdog = setTimeout(() => { console.error(`FAIL ${name}: the scenario ran out of time`); process.exit(1); },
    Number(process.env.WIDGET_SCENARIO_TIMEOUT_MS || WAIT_MS * 4));
  watchdog.unref();
  const consoleErrors = [];
  let browser;
  let page;
  try {
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: WAIT_MS });
    page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    page.setDefaultTimeout(WAIT_MS);
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${message.text()} ${message.location()?.url || ''}`.trim());
    });
    page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
    await SCENARIOS[name](page);
    console.log(`PASS ${name}`);
    return 0;
  } catch (error) {
    console.error(`FAIL ${name}: ${error instanceof Failure ? error.message : error.stack || error}`);
    if (page) {
      const seen = await snapshot(page).catch(() => null);
      console.error(`widget state: ${seen ? seen.state : '(no widget)'}; its visible text:\n${seen ? seen.visibleText : ''}`);
      await screenshot(page, `widget-failed-${name}.png`).catch(() => {});
    }
    return 1;
  } finally {
    // Resource loads refused because the scenario cut connections are expected in `resume`.
    if (consoleErrors.length) console.error(`browser console errors:\n  ${consoleErrors.join('\n  ')}`);
    await browser?.close().catch(() => {});
  }
}

process.exitCode = await main();
