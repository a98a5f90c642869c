// Runs the real signet binary (target/debug/signet) on a free loopback port, with its
// own temporary SQLite database and master key, and tears it down afterwards.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../../..');
export const SIGNET_BIN = process.env.SIGNET_BIN || join(REPO, 'target/debug/signet');
export const PASSWORD = 'violet-canyon-73-drift';

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/**
 * Starts signet. `allowedOrigins`: cors.allowed_origins; `env`: more SIGNET__* settings.
 * Returns { url, origin, port, stop(), register(username) }.
 */
export async function startSignet({ allowedOrigins = [], env = {} } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStart(await freePort(), allowedOrigins, env);
    } catch (err) {
      if (attempt >= 3) throw err; // the port may have been taken in between: retry
    }
  }
}

async function tryStart(port, allowedOrigins, env) {
  const dir = mkdtempSync(join(tmpdir(), 'signet-browser-'));
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(SIGNET_BIN, ['serve'], {
    cwd: dir,
    stdio: ['ignore', 'inherit', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUST_LOG: 'warn',
      SIGNET__SERVER__BIND: `127.0.0.1:${port}`,
      SIGNET__DATABASE__URL: `sqlite://${dir}/signet.db`,
      SIGNET__DEMO__ENABLED: 'true',
      SIGNET__PASSWORDS__BCRYPT_COST: '4',
      SIGNET__KEYS__MASTER_KEY: randomBytes(32).toString('base64'),
      SIGNET__TOKENS__ISSUER: url,
      // (Set only when non-empty: signet fails to start with an empty value.)
      ...(allowedOrigins.length ? { SIGNET__CORS__ALLOWED_ORIGINS: allowedOrigins.join(',') } : {}),
      // The tests log in and refresh more often from 127.0.0.1 than the per-IP limits allow.
      SIGNET__THROTTLE__PER_IP_PER_MINUTE: '10000',
      SIGNET__THROTTLE__PER_IP_BURST: '10000',
      ...env,
    },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    process.stderr.write(chunk);
  });
  const exited = new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };

  // Ready when /healthz answers (or failed when the process exits first).
  const deadline = Date.now() + 20_000;
  let dead = null;
  exited.then((how) => { dead = how; });
  for (;;) {
    if (dead) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`signet exited (${JSON.stringify(dead)}) before answering:\n${stderr}`);
    }
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`signet did not answer on ${url} within 20 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const register = async (username) => {
    const res = await fetch(`${url}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: PASSWORD }),
    });
    if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  return { url, origin: url, port, stop, register };
}
