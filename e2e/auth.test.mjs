// End-to-end test of the web page when the service needs bearer tokens
// (AUTH_TOKENS_FILE), in headless Chromium: the page asks for a token when
// the service answers 401, keeps it for the tab only (sessionStorage),
// says plainly what a 401 or 403 means, and, when reads need a token too
// (AUTH_READS), reads and follows the live events with it.
//
// Run it with scripts/e2e, which installs Chromium and playwright-core.
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { executablePath, freePort, repo, scenario, shots, waitFor } from './harness.mjs';

const scene = scenario();
const step = scene.step;

// A token per role, as `catalog tokens new` makes them, and the file that
// lists their hashes.
const tokens = Object.fromEntries(['reader', 'writer'].map((role) => [role, `catalog_${randomBytes(32).toString('base64url')}`]));
const tokenLines = Object.entries(tokens)
  .map(([role, tok]) => `${createHash('sha256').update(tok).digest('hex')} ${role} e2e-${role}`).join('\n');

describe('the web page with tokens', { timeout: 240_000 }, () => {
  let tmp;
  let bin;
  let context;
  const services = [];

  before(async () => {
    try {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'catalog-e2e-auth-'));
      bin = process.env.CATALOG_BIN;
      if (!bin) {
        bin = path.join(tmp, 'catalog');
        execFileSync('go', ['build', '-o', bin, './cmd/catalog'], { cwd: repo, stdio: 'inherit' });
      }
      fs.writeFileSync(path.join(tmp, 'tokens'), `${tokenLines}\n`, { mode: 0o600 });
      context = await chromium.launchPersistentContext(path.join(tmp, 'chromium-profile'), {
        executablePath,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1280, height: 900 },
      });
      fs.mkdirSync(shots, { recursive: true });
    } catch (err) {
      scene.failed = true;
      throw err;
    }
  });

  // start runs the service with env added, on fresh ports and data.
  async function start(name, env) {
    const [kafkaPort, httpPort] = [await freePort(), await freePort()];
    const base = `http://127.0.0.1:${httpPort}`;
    const logPath = path.join(tmp, `${name}.log`);
    const log = fs.openSync(logPath, 'w');
    const proc = spawn(bin, [], {
      cwd: tmp,
      env: {
        ...process.env,
        KAFKA_BROKERS: '',
        DATA_DIR: path.join(tmp, `data-${name}`),
        EMBEDDED_KAFKA_ADDR: `127.0.0.1:${kafkaPort}`,
        HTTP_ADDR: `127.0.0.1:${httpPort}`,
        ADVERTISED_URL: base,
        AUTH_TOKENS_FILE: path.join(tmp, 'tokens'),
        ...env,
      },
      stdio: ['ignore', log, log],
    });
    const svc = { proc, base, logPath, exit: once(proc, 'exit') };
    proc.on('exit', (code, signal) => { svc.exited = { code, signal }; });
    services.push(svc);
    await waitFor('the service to be ready (/readyz)', async () => {
      if (svc.exited) throw new Error(`the service exited (${JSON.stringify(svc.exited)}):\n${fs.readFileSync(logPath, 'utf8')}`);
      return (await fetch(`${base}/readyz`)).ok;
    }, 60_000);
    return svc;
  }

  async function stop(svc) {
    if (svc.exited) return;
    svc.proc.kill('SIGTERM');
    const timer = setTimeout(() => svc.proc.kill('SIGKILL'), 20_000);
    await svc.exit;
    clearTimeout(timer);
  }

  after(async () => {
    const page = context && context.pages()[0];
    if (page && scene.failed) await page.screenshot({ path: path.join(shots, 'auth-failure.png'), fullPage: true }).catch(() => {});
    if (context) await context.close();
    for (const svc of services) {
      await stop(svc);
      if (scene.failed) console.error(`--- ${svc.logPath} (tail)\n${fs.readFileSync(svc.logPath, 'utf8').split('\n').slice(-30).join('\n')}`);
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  let svc;
  let page;

  const dialog = () => page.getByRole('dialog', { name: 'A token is needed' });
  const storedToken = () => page.evaluate(() => sessionStorage.getItem('bearer-token'));

  async function enterToken(token) {
    await dialog().waitFor();
    await page.getByLabel('Bearer token').fill(token);
    await page.getByRole('button', { name: 'Use this token' }).click();
    await dialog().waitFor({ state: 'hidden' });
  }

  async function fillAuthor(code) {
    await page.getByLabel('Code').fill(code);
    await page.getByLabel('First name').fill('Jane');
    await page.getByLabel('Last name').fill('Austen');
    await page.getByRole('button', { name: 'Create author' }).click();
  }

  step('reads without a token when only writes need one', async () => {
    svc = await start('writes', {});
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => { page.errors = [...(page.errors || []), String(err)]; });
    await page.goto(`${svc.base}/`);
    await page.getByRole('heading', { level: 1, name: 'Authors' }).waitFor();
    await page.getByText('No authors yet').waitFor();
    await page.locator('#live-status[data-live="true"]').waitFor();
    assert.equal(await dialog().isVisible(), false);
    assert.equal(await page.locator('#token-status').isVisible(), false);
  });

  step('asks for a token when a write gets 401, and says 403 plainly', async () => {
    await fillAuthor('jane-austen');
    await dialog().waitFor();
    assert.match(await page.locator('#token-why').textContent(), /needs a bearer token/);
    await page.screenshot({ path: path.join(shots, 'auth-prompt.png') });
    await enterToken(tokens.reader);
    const error = page.locator('form[data-form="create-author"] .form-error');
    await error.getByText('Your token does not allow this (403 Forbidden).').waitFor();
    assert.match(await error.textContent(), /needs the writer role; "e2e-reader" has the role reader/);
    assert.equal(await storedToken(), tokens.reader);
    await page.locator('#token-status').getByText('Using a token (this tab only).').waitFor();
    await page.screenshot({ path: path.join(shots, 'auth-forbidden.png') });
  });

  step('takes another token and writes with it', async () => {
    await page.locator('form[data-form="create-author"]').getByRole('button', { name: 'Use another token' }).click();
    await enterToken(tokens.writer);
    await page.getByText('Token set for this tab: try again.').waitFor();
    await page.getByRole('button', { name: 'Create author' }).click();
    await page.getByRole('heading', { level: 1, name: 'Jane Austen' }).waitFor();
    assert.equal(await storedToken(), tokens.writer);
    await page.locator('#events li[data-type="AuthorCreated"]').first().waitFor();
  });

  step('keeps the token for this tab only', async () => {
    const other = await context.newPage();
    await other.goto(`${svc.base}/`);
    await other.getByRole('heading', { level: 1, name: 'Authors' }).waitFor();
    assert.equal(await other.evaluate(() => sessionStorage.getItem('bearer-token')), null);
    assert.equal(await other.evaluate(() => JSON.stringify(localStorage)), '{}');
    assert.deepEqual(await context.cookies(), []);
    await other.close();
  });

  step('forgets a refused token, and says 401 plainly when none is given', async () => {
    await page.evaluate(() => sessionStorage.setItem('bearer-token', 'catalog_not-a-real-token'));
    await page.getByLabel('First name').fill('Jane');
    await page.getByRole('button', { name: 'Save names' }).click();
    await dialog().waitFor();
    assert.match(await page.locator('#token-why').textContent(), /That token was refused/);
    await dialog().getByRole('button', { name: 'Cancel' }).click();
    const error = page.locator('form[data-form="update-author"] .form-error');
    await error.getByText('This needs a token (401 Unauthorized).').waitFor();
    assert.equal(await storedToken(), null);
    assert.equal(await page.locator('#token-status').isVisible(), false);
  });

  step('forgets the token on request', async () => {
    await page.locator('form[data-form="update-author"]').getByRole('button', { name: 'Enter a token' }).click();
    await enterToken(tokens.writer);
    await page.getByRole('button', { name: 'Forget token' }).click();
    assert.equal(await storedToken(), null);
    await page.getByText('Token forgotten.').waitFor();
    await stop(svc);
  });

  step('with AUTH_READS, asks before reading and follows the live events with the token', async () => {
    svc = await start('reads', { AUTH_READS: 'true' });
    await page.goto(`${svc.base}/`);
    await dialog().waitFor();
    await enterToken(tokens.reader);
    await page.getByRole('heading', { level: 1, name: 'Authors' }).waitFor();
    await page.getByText('No authors yet').waitFor();
    // An EventSource cannot send the token; the page streams with fetch.
    await page.locator('#live-status[data-live="true"]').waitFor();
    const res = await fetch(`${svc.base}/authors`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${tokens.writer}` },
      body: JSON.stringify({ code: 'mary-shelley', firstName: 'Mary', lastName: 'Shelley' }),
    });
    assert.equal(res.status, 201);
    await page.locator('#events li[data-type="AuthorCreated"]').getByRole('link', { name: 'mary-shelley' }).waitFor();
    await page.screenshot({ path: path.join(shots, 'auth-reads.png') });
  });

  step('made no script errors', () => {
    assert.deepEqual(page.errors || [], []);
  });
});
