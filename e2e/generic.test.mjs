// End-to-end test of the page's generic views, in headless Chromium, with
// an aggregate the catalog does not have: the publishers of
// e2e/publishers (PUBLISHERS_BIN, else `go build ./e2e/publishers`), kept
// in memory behind a small JSON API. The page knows nothing of them but
// their description: it must show their navigation, list, forms, detail,
// timeline, past states and live events under their own name, and
// nothing of authors or books.
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

describe('the generic page, with an aggregate of its own', { timeout: 120_000 }, () => {
  let tmp;
  let server;
  let base;
  let context;
  let page;

  before(async () => {
    try {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'publishers-e2e-'));
      let bin = process.env.PUBLISHERS_BIN;
      if (!bin) {
        bin = path.join(tmp, 'publishers');
        execFileSync('go', ['build', '-o', bin, './e2e/publishers'], { cwd: repo, stdio: 'inherit' });
      }
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      server = spawn(bin, ['-addr', `127.0.0.1:${port}`], { stdio: ['ignore', 'inherit', 'inherit'] });
      server.on('exit', (code, signal) => { server.exited = { code, signal }; });
      await waitFor('the fixture to serve', async () => {
        if (server.exited) throw new Error(`the fixture exited (${JSON.stringify(server.exited)})`);
        return (await fetch(`${base}/`)).ok;
      });
      context = await chromium.launchPersistentContext(path.join(tmp, 'chromium-profile'), {
        executablePath,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1280, height: 900 },
      });
      page = context.pages()[0] || await context.newPage();
      page.setDefaultTimeout(15_000);
      page.on('pageerror', (err) => { page.errors = [...(page.errors || []), String(err)]; });
      fs.mkdirSync(shots, { recursive: true });
    } catch (err) {
      scene.failed = true;
      throw err;
    }
  });

  after(async () => {
    if (page && scene.failed) await page.screenshot({ path: path.join(shots, 'generic-failure.png'), fullPage: true }).catch(() => {});
    if (context) await context.close();
    if (server && !server.exited) {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  step('draws its navigation from the description, and goes live', async () => {
    await page.goto(`${base}/`);
    await page.getByRole('heading', { level: 1, name: 'Publishers' }).waitFor();
    assert.match(page.url(), /#\/publishers$/);
    const nav = page.getByRole('navigation', { name: 'Main' });
    assert.deepEqual(await nav.getByRole('link').allTextContents(), ['Publishers', 'Live events']);
    assert.equal(await page.title(), 'Publishers · Publishers demo');
    await page.getByText('No publishers yet: create the first one below.').waitFor();
    await page.locator('#live-status[data-live="true"]').waitFor();
  });

  step('creates one with the generic form, the rejection next to the field', async () => {
    await page.getByLabel('Id').fill('Penguin!');
    await page.getByLabel('Name').fill('Penguin');
    await page.getByRole('button', { name: 'Create publisher' }).click();
    await page.locator('#create-publisher-id-error').getByText('lower-case letters and dashes').waitFor();
    await page.getByLabel('Id').fill('penguin');
    await page.getByLabel(/City/).fill('London');
    await page.getByRole('button', { name: 'Create publisher' }).click();
    await page.getByRole('heading', { level: 1, name: 'Penguin' }).waitFor();
    assert.match(page.url(), /#\/publishers\/penguin$/);
    await page.getByText('Publisher Penguin created.').waitFor();
    const meta = await page.locator('[data-meta]').textContent();
    assert.match(meta, /Id\s*penguin/);
    assert.match(meta, /City\s*London/);
  });

  step('shows its live events under its own name', async () => {
    const ev = page.locator('#events li[data-type="PublisherFounded"]').first();
    await ev.waitFor();
    assert.equal(await ev.getAttribute('data-aggregate'), 'publishers');
    assert.equal(await ev.locator('a').getAttribute('href'), '#/publishers/penguin');
    assert.match(await ev.textContent(), /Penguin/);
    assert.match(await ev.textContent(), /publisher · v1/);
  });

  step('edits it, with its timeline and a stale notice', async () => {
    await page.getByLabel('Name').fill('Penguin Press');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { level: 1, name: 'Penguin Press' }).waitFor();
    const events = page.locator('[data-timeline-events] > li');
    await waitFor('two events in the timeline', async () => (await events.count()) === 2);
    assert.match(await events.first().textContent(), /Now Penguin Press, in London/);
    assert.match(await events.nth(1).textContent(), /Founded as Penguin in London/);
    // Someone else changes it: the live events say so.
    const res = await fetch(`${base}/publishers/penguin`, {
      method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Penguin Random House' }),
    });
    assert.equal(res.status, 200);
    await page.locator('[data-stale]').getByText('This publisher changed since you loaded it').waitFor();
    await page.locator('[data-timeline-events] > li:first-child[data-position="3"]').getByText('Now Penguin Random House').waitFor();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('form[data-form="update-publisher"] .form-error').getByText('412 Precondition Failed').waitFor();
  });

  step('shows it as it was, and closes it', async () => {
    await page.locator('.tl-event[data-position="1"]').getByRole('link', { name: /View as it was here/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Penguin' }).waitFor();
    assert.match(await page.locator('[data-banner]').textContent(), /how this publisher was at position 1/);
    await page.locator('[data-banner]').getByRole('link', { name: 'Back to now' }).click();
    await page.getByRole('heading', { level: 1, name: 'Penguin Random House' }).waitFor();
    page.once('dialog', (d) => {
      assert.match(d.message(), /^Close the publisher Penguin Random House\?/);
      d.accept();
    });
    await page.getByRole('button', { name: 'Close this publisher' }).click();
    await page.getByText('Publisher Penguin Random House closed.').waitFor();
    await page.goto(`${base}/#/publishers/penguin`);
    await page.locator('[data-banner]').getByText('This publisher does not exist now.').waitFor();
    await page.locator('.tl-event[data-position="4"] .tl-what').getByText('Closed', { exact: true }).waitFor();
    await page.locator('#events li[data-type="PublisherClosed"][data-aggregate="publishers"]').first().waitFor();
    await page.screenshot({ path: path.join(shots, 'generic-closed.png'), fullPage: true });
  });

  step('names nothing but what it was told, and made no script errors', async () => {
    const text = await page.evaluate(() => document.documentElement.outerHTML);
    assert.doesNotMatch(text, /\b(authors?|books?|catalog)\b/i);
    assert.deepEqual(page.errors || [], []);
  });
});
