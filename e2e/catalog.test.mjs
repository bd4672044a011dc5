// End-to-end test of the catalog's web page in headless Chromium.
//
// It starts the service binary (CATALOG_BIN, else `go build ./cmd/catalog`)
// on an embedded broker in a temporary directory, then, through the page:
// creates an author and a book by that author, sees the book under the
// author, sees the events arrive in the live panel, and surfaces a
// concurrent edit (412); follows an author's timeline across a deletion,
// views it as it was at a point of its history, and sees a freshly
// opened page's live panel start with the last 50 events. Screenshots go
// to e2e/screenshots/.
//
// Run it with scripts/e2e, which installs Chromium and playwright-core.
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { executablePath, freePort, here, repo, scenario, shots, waitFor } from './harness.mjs';

const scene = scenario();
const step = scene.step;

describe('the catalog web page', { timeout: 240_000 }, () => {
  let tmp;
  let service;
  let serviceExit;
  let logPath;
  let base;
  let context;
  let page;

  before(async () => {
    try {
      await start();
    } catch (err) {
      scene.failed = true;
      throw err;
    }
  });

  async function start() {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'catalog-e2e-'));
    let bin = process.env.CATALOG_BIN;
    if (!bin) {
      bin = path.join(tmp, 'catalog');
      execFileSync('go', ['build', '-o', bin, './cmd/catalog'], { cwd: repo, stdio: 'inherit' });
    }
    const [kafkaPort, httpPort] = [await freePort(), await freePort()];
    base = `http://127.0.0.1:${httpPort}`;
    logPath = path.join(tmp, 'service.log');
    const log = fs.openSync(logPath, 'w');
    service = spawn(bin, [], {
      cwd: tmp,
      env: {
        ...process.env,
        KAFKA_BROKERS: '',
        DATA_DIR: path.join(tmp, 'data'),
        EMBEDDED_KAFKA_ADDR: `127.0.0.1:${kafkaPort}`,
        HTTP_ADDR: `127.0.0.1:${httpPort}`,
        ADVERTISED_URL: base,
      },
      stdio: ['ignore', log, log],
    });
    serviceExit = once(service, 'exit');
    service.on('exit', (code, signal) => { service.exited = { code, signal }; });
    await waitFor('the service to be ready (/readyz)', async () => {
      if (service.exited) throw new Error(`the service exited (${JSON.stringify(service.exited)}):\n${fs.readFileSync(logPath, 'utf8')}`);
      const res = await fetch(`${base}/readyz`);
      return res.ok;
    }, 60_000);

    context = await chromium.launchPersistentContext(path.join(tmp, 'chromium-profile'), {
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(15_000);
    // The page must not reach any other host.
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.protocol.startsWith('http') && url.origin !== base) page.foreignRequests = [...(page.foreignRequests || []), req.url()];
    });
    page.on('pageerror', (err) => { page.errors = [...(page.errors || []), String(err)]; });
    fs.rmSync(shots, { recursive: true, force: true });
    fs.mkdirSync(shots, { recursive: true });
  }

  after(async () => {
    if (page && scene.failed) await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true }).catch(() => {});
    if (context) await context.close();
    if (service && !service.exited) {
      service.kill('SIGTERM');
      const timer = setTimeout(() => service.kill('SIGKILL'), 20_000);
      await serviceExit;
      clearTimeout(timer);
    }
    if (scene.failed && logPath) {
      console.error(`--- service log (tail)\n${fs.readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n')}`);
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  step('serves the page and goes live', async () => {
    await page.goto(`${base}/`);
    await page.getByRole('heading', { level: 1, name: 'Authors' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await page.getByRole('complementary', { name: 'Live events' }).waitFor();
    // Live: the feed's consumer is positioned, so no event is missed.
    await page.locator('#live-status[data-live="true"]').waitFor();
  });

  step('shows the service\'s rejection next to the field', async () => {
    await page.getByLabel('Code').fill('Jane Austen!');
    await page.getByLabel('First name').fill('Jane');
    await page.getByLabel('Last name').fill('Austen');
    await page.getByRole('button', { name: 'Create author' }).click();
    const error = page.locator('#create-author-code-error');
    await error.waitFor();
    const text = await error.textContent();
    // The message is the API's own problem detail.
    const res = await fetch(`${base}/authors`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code: 'Jane Austen!', firstName: 'Jane', lastName: 'Austen' }),
    });
    const problem = await res.json();
    assert.equal(res.status, 422);
    assert.equal(text, problem.detail);
    assert.equal(await page.getByLabel('Code').getAttribute('aria-invalid'), 'true');
    await page.screenshot({ path: path.join(shots, 'desktop-rejected.png') });
  });

  step('creates an author', async () => {
    await page.getByLabel('Code').fill('jane-austen');
    await page.getByRole('button', { name: 'Create author' }).click();
    await page.getByRole('heading', { level: 1, name: 'Jane Austen' }).waitFor();
    assert.match(page.url(), /#\/authors\/jane-austen$/);
    await page.getByText('Author Jane Austen created.').waitFor();
  });

  step('creates a book by that author', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Books' }).click();
    await page.getByRole('heading', { level: 1, name: 'Books' }).waitFor();
    await page.getByLabel('Title').fill('Pride and Prejudice');
    await page.getByLabel(/Author code/).fill('jane-austen');
    await page.getByRole('button', { name: 'Create book' }).click();
    await page.getByRole('heading', { level: 1, name: 'Pride and Prejudice' }).waitFor();
    const author = page.locator('[data-author] a');
    assert.equal(await author.textContent(), 'jane-austen');
  });

  step('adds a chapter and reads it', async () => {
    await page.getByLabel('Chapter title').fill('Chapter 1');
    await page.getByLabel('Content').fill('It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.');
    await page.getByRole('button', { name: 'Add chapter' }).click();
    await page.getByRole('heading', { level: 3, name: '1. Chapter 1' }).waitFor();
    await page.getByRole('region', { name: 'Chapters' }).getByText('It is a truth universally acknowledged').waitFor();
  });

  step('shows the book under its author', async () => {
    await page.locator('[data-author] a').click();
    await page.getByRole('heading', { level: 1, name: 'Jane Austen' }).waitFor();
    // The books-by-author read model follows the events; the page
    // refreshes on them, and the button refreshes by hand.
    const books = page.locator('[data-books]');
    await waitFor('the book in the author\'s list', async () => {
      if (await books.getByRole('link', { name: 'Pride and Prejudice' }).count()) return true;
      await page.getByRole('button', { name: 'Refresh the list' }).click();
      return false;
    }, 20_000, 500);
  });

  step('shows the committed events in the live panel', async () => {
    const panel = page.locator('#events');
    for (const type of ['AuthorCreated', 'BookCreated', 'BookAuthorSet', 'ChapterAdded']) {
      await panel.locator(`li[data-type="${type}"]`).first().waitFor();
    }
    const created = panel.locator('li[data-type="AuthorCreated"]').first();
    assert.match(await created.textContent(), /jane-austen/);
    assert.match(await created.textContent(), /Jane Austen/);
  });

  step('surfaces a concurrent edit as a 412', async () => {
    // Someone else renames the author after this page loaded it.
    const res = await fetch(`${base}/authors/jane-austen`, {
      method: 'PUT', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ firstName: 'Jane', lastName: 'Austen (1775-1817)' }),
    });
    assert.equal(res.status, 200);
    // The live panel tells the page its copy is stale...
    await page.locator('[data-stale]').getByText('changed since you loaded it').waitFor();
    // ...and saving the old version is refused, not overwritten.
    await page.getByLabel('Last name').fill('Austen, of Steventon');
    await page.getByRole('button', { name: 'Save names' }).click();
    const conflict = page.locator('form[data-form="update-author"] .form-error');
    await conflict.getByText('412 Precondition Failed').waitFor();
    await page.screenshot({ path: path.join(shots, 'desktop-conflict.png'), fullPage: true });
    const after = await (await fetch(`${base}/authors/jane-austen`)).json();
    assert.equal(after.lastName, 'Austen (1775-1817)');
    await conflict.getByRole('button', { name: 'Reload' }).click();
    await page.getByRole('heading', { level: 1, name: 'Jane Austen (1775-1817)' }).waitFor();
  });

  step('pages the authors with the API\'s cursor', async () => {
    for (let i = 1; i <= 20; i++) {
      const code = `writer-${String(i).padStart(2, '0')}`;
      const res = await fetch(`${base}/authors`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ code, firstName: 'Writer', lastName: String(i) }),
      });
      assert.equal(res.status, 201);
    }
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Authors' }).click();
    await page.getByRole('heading', { level: 1, name: 'Authors' }).waitFor();
    const items = page.locator('[data-list] > li');
    await waitFor('a full first page', async () => (await items.count()) === 20);
    // Ordered by code: jane-austen first, writer-19 last; writer-20 is next.
    assert.match(await items.first().textContent(), /jane-austen/);
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.getByRole('link', { name: 'First page' }).waitFor();
    await waitFor('the second page', async () => (await items.count()) === 1);
    assert.match(await items.first().textContent(), /writer-20/);
    await page.getByRole('link', { name: 'First page' }).click();
    await waitFor('the first page again', async () => (await items.count()) === 20);
  });

  step('looks right at desktop and phone widths', async () => {
    await page.locator('#live-status[data-live="true"]').waitFor();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: path.join(shots, 'desktop-author.png'), fullPage: true });
    await page.locator('#events li[data-type="BookAuthorSet"] a').first().click();
    await page.getByRole('heading', { level: 1, name: 'Pride and Prejudice' }).waitFor();
    await page.screenshot({ path: path.join(shots, 'desktop-book.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    // At a phone's width nothing scrolls sideways.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone's screen`);
    await page.screenshot({ path: path.join(shots, 'phone-book.png'), fullPage: true });
    await page.goto(`${base}/#/authors`);
    await page.getByRole('heading', { level: 1, name: 'Authors' }).waitFor();
    await page.screenshot({ path: path.join(shots, 'phone-authors.png'), fullPage: true });
  });

  step('renames a book, clears its author, removes a chapter and the book', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Books' }).click();
    await page.getByRole('link', { name: 'Pride and Prejudice' }).click();
    await page.getByRole('heading', { level: 1, name: 'Pride and Prejudice' }).waitFor();
    await page.getByLabel('Title', { exact: true }).fill('Pride & Prejudice');
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('heading', { level: 1, name: 'Pride & Prejudice' }).waitFor();
    await page.getByRole('button', { name: 'Clear author' }).click();
    await page.locator('[data-author]').getByText('none').waitFor();
    await page.getByRole('button', { name: 'Remove chapter 1' }).click();
    await page.getByText('No chapters yet.').waitFor();
    // An unknown author is refused with the service's message, next to the field.
    await page.getByLabel('Author code').fill('nobody-here');
    await page.getByRole('button', { name: 'Set author' }).click();
    await page.locator('#eb-authorCode-error').getByText('does not exist').waitFor();
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: 'Remove this book' }).click();
    await page.getByRole('heading', { level: 1, name: 'Books' }).waitFor();
    await page.getByText('Book “Pride & Prejudice” removed.').waitFor();
    const res = await fetch(`${base}/books?limit=10`);
    assert.deepEqual((await res.json()).items, []);
    for (const type of ['BookUpdated', 'ChapterRemoved', 'BookRemoved']) {
      await page.locator(`#events li[data-type="${type}"]`).first().waitFor();
    }
  });

  step('shows an author\'s timeline, newest first, across a deletion', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Authors' }).click();
    await page.getByRole('heading', { level: 1, name: 'Authors' }).waitFor();
    await page.getByLabel('Code').fill('mary-shelley');
    await page.getByLabel('First name').fill('Mary');
    await page.getByLabel('Last name').fill('Godwin');
    await page.getByRole('button', { name: 'Create author' }).click();
    await page.getByRole('heading', { level: 1, name: 'Mary Godwin' }).waitFor();
    await page.getByLabel('Last name').fill('Shelley');
    await page.getByRole('button', { name: 'Save names' }).click();
    await page.getByRole('heading', { level: 1, name: 'Mary Shelley' }).waitFor();
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: 'Delete this author' }).click();
    await page.getByText('Author Mary Shelley deleted.').waitFor();
    // Gone: its page says so and still shows its history.
    await page.goto(`${base}/#/authors/mary-shelley`);
    await page.locator('[data-banner]').getByText('This author does not exist now.').waitFor();
    await page.locator('.tl-event[data-position="3"]').waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Authors' }).click();
    await page.getByLabel('Code').fill('mary-shelley');
    await page.getByLabel('First name').fill('Mary');
    await page.getByLabel('Last name').fill('Wollstonecraft Shelley');
    await page.getByRole('button', { name: 'Create author' }).click();
    await page.getByRole('heading', { level: 1, name: 'Mary Wollstonecraft Shelley' }).waitFor();

    const events = page.locator('[data-timeline-events] > li');
    const rows = async () => events.evaluateAll((lis) => lis.map((li) => ({
      position: Number(li.dataset.position), type: li.dataset.type,
      version: li.querySelector('[data-tl-version]').textContent,
    })));
    await waitFor('a timeline of four events', async () => (await events.count()) === 4);
    assert.deepEqual(await rows(), [
      { position: 4, type: 'AuthorCreated', version: 'version 1' },
      { position: 3, type: 'AuthorDeleted', version: 'version 3' },
      { position: 2, type: 'AuthorUpdated', version: 'version 2' },
      { position: 1, type: 'AuthorCreated', version: 'version 1' },
    ]);
    assert.match(await events.first().textContent(), /Created as Mary Wollstonecraft Shelley/);
    assert.match(await events.nth(2).textContent(), /Names changed to Mary Shelley/);
    await page.screenshot({ path: path.join(shots, 'desktop-timeline.png'), fullPage: true });
  });

  step('shows an author as it was at a point of its history, read-only', async () => {
    await page.locator('.tl-event[data-position="2"]').getByRole('link', { name: /View as it was here/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Mary Shelley' }).waitFor();
    assert.match(page.url(), /#\/authors\/mary-shelley@2$/);
    const banner = page.locator('[data-banner]');
    assert.match(await banner.textContent(), /A past state, read-only\..*position 2.*version 2/);
    // Nothing to edit, and the event viewed is marked.
    assert.equal(await page.locator('#view form').count(), 0);
    await page.locator('.tl-event[data-position="2"][aria-current="step"]').waitFor();
    await page.screenshot({ path: path.join(shots, 'desktop-past.png'), fullPage: true });
    // Before its deletion was undone, it did not exist.
    await page.locator('.tl-event[data-position="3"]').getByRole('link', { name: /View as it was here/ }).click();
    await banner.getByText('did not exist').waitFor();
    await banner.getByRole('link', { name: 'Back to now' }).click();
    await page.getByRole('heading', { level: 1, name: 'Mary Wollstonecraft Shelley' }).waitFor();
    assert.match(page.url(), /#\/authors\/mary-shelley$/);
  });

  step('adds a live event to the timeline', async () => {
    const events = page.locator('[data-timeline-events] > li');
    await waitFor('the timeline', async () => (await events.count()) === 4);
    // Someone else changes the author: the page learns it from the live events.
    const res = await fetch(`${base}/authors/mary-shelley`, {
      method: 'PUT', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ firstName: 'Mary', lastName: 'Shelley (1797-1851)' }),
    });
    assert.equal(res.status, 200);
    await page.locator('[data-timeline-events] > li:first-child[data-position="5"]').getByText('Names changed to Mary Shelley (1797-1851)').waitFor();
    assert.equal(await events.count(), 5);
  });

  step('pages the timeline with "Older events"', async () => {
    for (let v = 2; v <= 25; v++) {
      const res = await fetch(`${base}/authors/writer-01`, {
        method: 'PUT', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ firstName: 'Writer', lastName: `1, take ${v}` }),
      });
      assert.equal(res.status, 200);
    }
    await page.goto(`${base}/#/authors/writer-01`);
    await page.getByRole('heading', { level: 1, name: 'Writer 1, take 25' }).waitFor();
    const events = page.locator('[data-timeline-events] > li');
    await waitFor('the first page of the timeline', async () => (await events.count()) === 20);
    assert.equal(await events.first().getAttribute('data-position'), '25');
    await page.getByRole('button', { name: 'Older events' }).click();
    await waitFor('the older events', async () => (await events.count()) === 25);
    assert.equal(await events.last().getAttribute('data-position'), '1');
    assert.ok(await page.getByRole('button', { name: 'Older events' }).isHidden());
  });

  step('shows the last 50 committed events on a freshly opened page', async () => {
    // More than 50 events are committed by now; the newest is writer-01's.
    const fresh = await context.newPage();
    fresh.on('pageerror', (err) => { page.errors = [...(page.errors || []), `fresh page: ${err}`]; });
    try {
      await fresh.goto(`${base}/#/books`);
      const items = fresh.locator('#events > li');
      await waitFor('the recent events in a fresh page\'s live panel', async () => (await items.count()) === 50);
      await fresh.locator('#live-status[data-live="true"]').waitFor();
      assert.equal(await items.count(), 50);
      const newest = items.first();
      assert.equal(await newest.getAttribute('data-type'), 'AuthorUpdated');
      assert.match(await newest.textContent(), /writer-01/);
      assert.match(await newest.textContent(), /1, take 25/);
      // Newest first: the oldest shown is older than the ones above it.
      const times = await items.locator('time').evaluateAll((ts) => ts.map((t) => Date.parse(t.getAttribute('datetime'))));
      assert.deepEqual(times, [...times].sort((a, b) => b - a));
      // And it follows what comes next.
      const res = await fetch(`${base}/authors/writer-02`, {
        method: 'PUT', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ firstName: 'Writer', lastName: '2, again' }),
      });
      assert.equal(res.status, 200);
      await fresh.locator('#events > li:first-child .event-summary', { hasText: '2, again' }).waitFor();
    } finally {
      await fresh.close();
    }
  });

  step('made no requests to other hosts and no script errors', () => {
    assert.deepEqual(page.foreignRequests || [], []);
    assert.deepEqual(page.errors || [], []);
  });

  step('lets the service shut down promptly with the event stream open', async () => {
    const started = Date.now();
    service.kill('SIGTERM');
    const timer = setTimeout(() => service.kill('SIGKILL'), 20_000);
    const [code] = await serviceExit;
    clearTimeout(timer);
    assert.equal(code, 0, `the service exited with ${code}`);
    assert.ok(Date.now() - started < 10_000, `shutdown took ${Date.now() - started} ms`);
  });
});
