// The shared parts of the browser tests (*.test.mjs): where things are,
// a scenario whose steps stop at the first failure, free ports and waits.
import { it } from 'node:test';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..');
export const shots = path.join(here, 'screenshots');
export const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

// scenario returns the steps of one test file: each step is skipped once
// one has failed, and failed is remembered so that the clean-up saves a
// screenshot and the service's log (a hook that fails sets it too).
export function scenario() {
  const s = {
    failed: false,
    step(name, fn) {
      it(name, { timeout: 60_000 }, async (t) => {
        if (s.failed) {
          t.skip('an earlier step failed');
          return;
        }
        try {
          await fn(t);
        } catch (err) {
          s.failed = true;
          throw err;
        }
      });
    },
  };
  return s;
}

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

export async function waitFor(what, fn, timeoutMs = 30_000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
