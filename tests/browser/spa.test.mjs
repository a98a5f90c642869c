// signet's SPA cookie mode, tested with the demo SPA (examples/spa) in Debian's headless
// Chromium against the real signet binary. Run: `npm test` here, or `.ci/browser-tests`.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { launchBrowser } from './lib/browser.mjs';
import { PASSWORD, REPO, startSignet } from './lib/signet.mjs';
import { serveStatic } from './lib/static.mjs';

const SPA_DIR = join(REPO, 'examples/spa');
const OUTPUT = join(import.meta.dirname, 'output');
const COOKIE = '__Host-signet_refresh';

let browser;
let signet; // allows `allowed`'s origin only
let allowed; // examples/spa on a second origin, listed in cors.allowed_origins
let other; // examples/spa and forged forms on a third origin, not listed
const stops = [];
let users = 0;

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  browser = await launchBrowser();
  stops.push(() => browser.close());
  allowed = await serveStatic(SPA_DIR);
  stops.push(allowed.close);
  other = await serveStatic(SPA_DIR);
  stops.push(other.close);
  signet = await startSignet({ allowedOrigins: [allowed.origin] });
  stops.push(signet.stop);
});

after(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
});

// ---- helpers ----------------------------------------------------------------------

async function newUser(server = signet) {
  const username = `user${++users}`;
  await server.register(username);
  return username;
}

/** A fresh cookie jar, and a log of the page errors and CSP violations in it. */
async function newContext() {
  const context = await browser.newContext();
  context.problems = [];
  context.on('page', watchPage);
  return context;
}

function watchPage(page) {
  page.setDefaultTimeout(10_000);
  const problems = page.context().problems;
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content.Security.Policy|Refused to/i.test(msg.text())) problems.push(msg.text());
  });
}

async function openPage(context, url) {
  const page = await context.newPage();
  await page.goto(url);
  await settled(page);
  return page;
}

/** Waits until the demo has finished starting (signed in or out). */
async function settled(page) {
  await page.waitForFunction(() => document.body.dataset.state !== 'loading');
  return page.evaluate(() => document.body.dataset.state);
}

async function signedInAs(page, username) {
  await page.waitForFunction(
    (name) => document.body.dataset.state === 'signed-in' && document.getElementById('username').textContent === name,
    username,
  );
}

async function login(page, username) {
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/v1/auth/login')),
    page.click('#login button'),
  ]);
  await signedInAs(page, username);
  return response;
}

const claims = async (page) => JSON.parse(await page.textContent('#claims'));
const errorText = async (page) => ((await page.isVisible('#error')) ? page.textContent('#error') : '');

async function callProtected(page) {
  await page.evaluate(() => { document.getElementById('result').textContent = ''; });
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/v1/auth/sessions')),
    page.click('#call'),
  ]);
  assert.equal(response.status(), 200);
  await page.waitForFunction(() => document.getElementById('result').textContent.includes('"sessions"'));
  return JSON.parse(await page.textContent('#result'));
}

/** Every /v1/auth/refresh response of a context: its status, and its request. */
function recordRefreshes(context) {
  const seen = [];
  context.on('response', (response) => {
    const request = response.request();
    if (request.method() === 'POST' && request.url().endsWith('/v1/auth/refresh')) seen.push({ status: response.status(), request });
  });
  return seen;
}

/** When a finished request was in flight: [start, end] in ms. */
function inFlight({ request }) {
  const t = request.timing();
  assert.ok(t.startTime > 0 && t.responseEnd > 0, `timing of a finished request: ${JSON.stringify(t)}`);
  return { start: t.startTime, end: t.startTime + t.responseEnd };
}

const demoUrl = (server = signet) => `${server.url}/demo/`;

// ---- scenarios --------------------------------------------------------------------

describe('demo SPA served by signet', () => {
  test('login, then a protected call works; the tokens stay out of JavaScript-readable storage', async () => {
    const context = await newContext();
    const page = await openPage(context, demoUrl());
    assert.equal(await settled(page), 'signed-out');
    assert.equal(await errorText(page), '', 'no error shown for a first visit without a cookie');

    // A failed login shows the problem document's code and detail.
    const username = await newUser();
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', 'not-the-password');
    await page.click('#login button');
    await page.waitForFunction(() => document.getElementById('error').textContent.includes('invalid_credentials'));
    assert.match(await errorText(page), /^Error: 401 invalid_credentials: \S/);

    const response = await login(page, username);
    assert.equal(await errorText(page), '', 'the error is cleared');
    const body = await response.json();
    assert.equal(response.status(), 200);
    assert.ok(body.access_token, 'the access token is in the body');
    assert.equal(body.refresh_token, undefined, 'the refresh token is not in the body');

    // Chromium kept the __Host- cookie although the page is plain http: 127.0.0.1 is a
    // secure context, so Secure cookies work on loopback.
    const cookies = await context.cookies(signet.url);
    const refreshCookie = cookies.find((c) => c.name === COOKIE);
    assert.ok(refreshCookie, `${COOKIE} stored; cookies: ${JSON.stringify(cookies)}`);
    assert.equal(refreshCookie.httpOnly, true);
    assert.equal(refreshCookie.secure, true);
    assert.equal(refreshCookie.sameSite, 'Strict');
    assert.equal(refreshCookie.path, '/');
    assert.ok(refreshCookie.expires > Date.now() / 1000 + 3600, 'a persistent cookie (Max-Age)');

    // The page shows the user and the claims.
    const shown = await claims(page);
    assert.equal(shown.preferred_username, username);
    assert.ok(shown.sid && shown.exp > shown.iat);
    assert.match(await page.textContent('#me'), new RegExp(`"username": "${username}"`));

    const result = await callProtected(page);
    assert.equal(result.sessions.length, 1);
    assert.equal(result.sessions[0].current, true);

    // Neither token is where page scripts could read it back.
    const storage = await page.evaluate(() => ({
      cookie: document.cookie,
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
    }));
    assert.ok(!storage.cookie.includes(COOKIE) && !storage.cookie.includes(refreshCookie.value), 'document.cookie');
    for (const place of [storage.local, storage.session]) {
      assert.ok(!place.includes(body.access_token) && !place.includes(refreshCookie.value), place);
    }

    await page.screenshot({ path: join(OUTPUT, 'demo-logged-in.png'), fullPage: true });
    assert.deepEqual(context.problems, []);
    await context.close();
  });

  test('a reload stays signed in through a silent refresh with the cookie', async () => {
    const context = await newContext();
    const page = await openPage(context, demoUrl());
    const username = await newUser();
    await login(page, username);
    const before = await claims(page);

    const refreshes = recordRefreshes(context);
    const logins = [];
    page.on('request', (r) => r.url().endsWith('/v1/auth/login') && logins.push(r));
    const [refreshed] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/auth/refresh')),
      page.reload(),
    ]);
    await signedInAs(page, username);
    const afterReload = await claims(page);
    assert.deepEqual(refreshes.map((r) => r.status), [200]);
    const pair = await refreshed.json();
    assert.ok(pair.access_token);
    assert.equal(pair.refresh_token, undefined, 'the rotated refresh token is not in the body');
    assert.match((await refreshed.allHeaders())['set-cookie'] || '', new RegExp(`^${COOKIE}=`), 'the rotated cookie is set');
    assert.equal(logins.length, 0);
    assert.equal(afterReload.sid, before.sid, 'same session');
    assert.notEqual(afterReload.jti, before.jti, 'a new access token');
    await callProtected(page);
    assert.deepEqual(context.problems, []);
    await context.close();
  });

  test('two tabs refreshing at once both stay signed in', async (t) => {
    const context = await newContext();
    const tab1 = await openPage(context, demoUrl());
    const username = await newUser();
    await login(tab1, username);
    const tab2 = await openPage(context, demoUrl());
    await signedInAs(tab2, username);

    const refreshes = recordRefreshes(context);
    for (let round = 0; round < 5; round++) {
      await Promise.all([tab1, tab2].map((tab) => tab.evaluate(() => window.signetDemo.refresh())));
    }
    await new Promise((r) => setTimeout(r, 200)); // let the last response events land
    // Per round one tab refreshes; the other, once it has the lock, either has the fresh
    // token already (BroadcastChannel) and skips, or refreshes with the rotated cookie.
    t.diagnostic(`${refreshes.length} refresh requests in 5 rounds of 2 tabs`);
    assert.ok(refreshes.length >= 5 && refreshes.length <= 10, `${refreshes.length} refreshes`);
    assert.deepEqual(refreshes.map((r) => r.status), refreshes.map(() => 200));
    // Never two refreshes in flight together: the tabs took turns (Web Locks).
    const sorted = refreshes.map(inFlight).sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(sorted[i].start >= sorted[i - 1].end - 1, `overlapping refreshes: ${JSON.stringify(sorted)}`);
    }

    // Both tabs hold a working token of the same, still valid session...
    const [c1, c2] = [await claims(tab1), await claims(tab2)];
    assert.equal(c1.sid, c2.sid);
    for (const tab of [tab1, tab2]) {
      assert.equal(await errorText(tab), '');
      await callProtected(tab);
    }
    // ...and the cookie still works for both after reloads.
    for (const tab of [tab1, tab2]) {
      await tab.reload();
      await signedInAs(tab, username);
    }
    assert.deepEqual(context.problems, []);
    await context.close();
  });

  test('control: two refreshes at once without the lock end the session (why the demo takes turns)', async () => {
    // Two plain fetches that both carry the same cookie: the second presents a token
    // that was just rotated, which revokes the session (refresh_reuse_grace_secs = 0).
    // The browser picks the cookie as each request starts, so the race is retried in
    // the rare case that the second request already carried the rotated cookie.
    for (let attempt = 1; ; attempt++) {
      const context = await newContext();
      const page = await openPage(context, demoUrl());
      await login(page, await newUser());
      const cookies = [];
      context.on('request', (r) => r.url().endsWith('/v1/auth/refresh') && cookies.push(r.allHeaders().then((h) => h.cookie)));
      const statuses = await page.evaluate(async (api) => {
        const send = () => fetch(`${api}/v1/auth/refresh`, { method: 'POST', credentials: 'include', headers: { 'X-Requested-With': 'signet' } });
        return (await Promise.all([send(), send()])).map((r) => r.status).sort();
      }, signet.url);
      const [first, second] = await Promise.all(cookies);
      if (first !== second && attempt < 3) {
        await context.close();
        continue;
      }
      assert.equal(first, second, 'both requests carried the same cookie');
      assert.deepEqual(statuses, [200, 401]);
      await page.reload();
      assert.equal(await settled(page), 'signed-out', 'the session was revoked');
      await context.close();
      break;
    }
  });

  test('logout clears the session in every tab, and a reload stays signed out', async () => {
    const context = await newContext();
    const tab1 = await openPage(context, demoUrl());
    const username = await newUser();
    await login(tab1, username);
    const tab2 = await openPage(context, demoUrl());
    await signedInAs(tab2, username);

    const [response] = await Promise.all([
      tab1.waitForResponse((r) => r.url().endsWith('/v1/auth/logout')),
      tab1.click('#logout'),
    ]);
    assert.equal(response.status(), 204);
    for (const tab of [tab1, tab2]) {
      await tab.waitForFunction(() => document.body.dataset.state === 'signed-out');
      assert.equal(await tab.isVisible('#session'), false);
    }
    assert.deepEqual((await context.cookies(signet.url)).filter((c) => c.name === COOKIE), [], 'cookie cleared');

    const refreshes = recordRefreshes(context);
    await tab1.reload();
    assert.equal(await settled(tab1), 'signed-out');
    assert.deepEqual(refreshes.map((r) => r.status), [401]);
    assert.equal(await errorText(tab1), '', 'signed out is not an error');
    assert.deepEqual(context.problems, []);
    await context.close();
  });

  test('the access token is refreshed silently before it expires', async () => {
    const shortLived = await startSignet({ env: { SIGNET__TOKENS__ACCESS_TTL_SECS: '4' } });
    stops.push(shortLived.stop);
    const context = await newContext();
    const page = await openPage(context, demoUrl(shortLived));
    const username = await newUser(shortLived);
    await login(page, username);
    const first = await claims(page);
    assert.equal(first.exp - first.iat, 4);

    // Refreshes at 80% of a short lifetime: about 3.2 s after login, then again.
    let previous = first;
    for (let n = 1; n <= 2; n++) {
      const response = await page.waitForResponse((r) => r.url().endsWith('/v1/auth/refresh'), { timeout: 8000 });
      assert.equal(response.status(), 200);
      await page.waitForFunction((jti) => !document.getElementById('claims').textContent.includes(jti), previous.jti);
      const next = await claims(page);
      assert.equal(next.sid, first.sid);
      assert.ok(next.exp > previous.exp);
      previous = next;
    }
    await callProtected(page);
    assert.deepEqual(context.problems, []);
    await context.close();
    await shortLived.stop();
  });
});

describe('the SPA on another origin', () => {
  test('works when that origin is in cors.allowed_origins', async () => {
    const context = await newContext();
    const page = await openPage(context, `${allowed.origin}/?api=${signet.url}`);
    assert.equal(await settled(page), 'signed-out');
    assert.equal(await page.textContent('#api'), signet.url);
    const username = await newUser();
    const response = await login(page, username);
    assert.equal(response.headers()['access-control-allow-origin'], allowed.origin);
    assert.equal(response.headers()['access-control-allow-credentials'], 'true');
    await callProtected(page);

    const refreshes = recordRefreshes(context);
    await page.reload();
    await signedInAs(page, username);
    assert.deepEqual(refreshes.map((r) => r.status), [200], 'credentialed cross-origin refresh');

    await page.click('#logout');
    await page.waitForFunction(() => document.body.dataset.state === 'signed-out');
    assert.equal(await errorText(page), '');
    assert.deepEqual(context.problems, []);
    await context.close();
  });

  test('fails visibly when that origin is not allowed, and no token is issued', async () => {
    const context = await newContext();
    const page = await openPage(context, `${other.origin}/?api=${signet.url}`);
    // The silent refresh on load is already refused (preflight without CORS approval).
    assert.match(await errorText(page), /CORS refused this origin/);

    const username = await newUser();
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('#login button');
    await page.waitForFunction(() => document.getElementById('error').textContent.includes('/v1/auth/login'));
    assert.match(await errorText(page), /CORS refused this origin/);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'signed-out');
    assert.deepEqual(await context.cookies(signet.url), [], 'no refresh cookie was set');

    // What signet itself answers that origin: 403 csrf_rejected, without CORS headers.
    const res = await fetch(`${signet.url}/v1/auth/login`, {
      method: 'POST',
      headers: { origin: other.origin, 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: PASSWORD, token_delivery: 'cookie' }),
    });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).code, 'csrf_rejected');
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    assert.equal(res.headers.get('set-cookie'), null);
    await context.close();
  });
});

describe('cross-site request forgery', () => {
  // A page that auto-submits a form to signet's refresh endpoint, as an attacker's would.
  const forgery = (action, { sandboxed = false } = {}) => {
    const form = `<form method="post" action="${action}" target="_top"></form><script>document.forms[0].submit()</script>`;
    if (!sandboxed) return `<!doctype html><title>forged</title>${form}`;
    // Submitted from a sandboxed frame (into the top window), the request has `Origin: null`.
    const escaped = form.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    return `<!doctype html><title>forged</title>
      <iframe sandbox="allow-forms allow-scripts allow-top-navigation" srcdoc="${escaped}"></iframe>`;
  };

  async function forge(context, server, attackerPage) {
    const page = await context.newPage();
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${server.url}/v1/auth/refresh`),
      page.goto(attackerPage),
    ]);
    const request = response.request();
    return {
      status: response.status(),
      body: await response.text().catch(() => ''),
      requestHeaders: await request.allHeaders(),
      responseHeaders: await response.allHeaders(),
    };
  }

  async function assertRejected(forged, label, { withCookie = true } = {}) {
    const carried = (forged.requestHeaders.cookie || '').includes(`${COOKIE}=`);
    assert.equal(carried, withCookie, `${label}: the forged request ${withCookie ? 'carried' : 'did not carry'} the cookie`);
    assert.equal(forged.status, 403, `${label}: ${forged.status} ${forged.body}`);
    assert.match(forged.body, /csrf_rejected/);
    assert.ok(!forged.body.includes('access_token'), `${label}: no token issued`);
    assert.equal(forged.responseHeaders['set-cookie'], undefined, `${label}: no cookie set`);
  }

  test('a form POST to /v1/auth/refresh from another origin of the same site is rejected', async () => {
    // 127.0.0.1 on another port is a different origin but the same site, so even the
    // SameSite=Strict cookie goes along: the Origin check has to (and does) stop it.
    const context = await newContext();
    const demo = await openPage(context, demoUrl());
    const username = await newUser();
    await login(demo, username);
    const sid = (await claims(demo)).sid;

    const action = `${signet.url}/v1/auth/refresh`;
    serveStaticPage(other, '/forge.html', forgery(action));
    serveStaticPage(other, '/forge-null.html', forgery(action, { sandboxed: true }));
    await assertRejected(await forge(context, signet, `${other.origin}/forge.html`), 'Origin: other');
    // From a sandboxed frame (Origin: null) the request counts as cross-site: no
    // SameSite=Strict cookie at all (the SameSite=None test below sends it).
    const nullOrigin = await forge(context, signet, `${other.origin}/forge-null.html`);
    assert.equal(nullOrigin.requestHeaders.origin, 'null');
    await assertRejected(nullOrigin, 'Origin: null', { withCookie: false });

    // Even the allowed origin cannot do it with a form (no X-Requested-With).
    serveStaticPage(allowed, '/forge.html', forgery(action));
    await assertRejected(await forge(context, signet, `${allowed.origin}/forge.html`), 'Origin: allowed');

    // The session survived: a reload refreshes with the same cookie.
    await demo.reload();
    await signedInAs(demo, username);
    assert.equal((await claims(demo)).sid, sid);
    await context.close();
  });

  test('with cookies.same_site = None, a form POST from another site is rejected too', async () => {
    // SameSite=None (for an SPA on another site) lets the cookie ride along on a
    // cross-site form POST; the CSRF check must stop it.
    const none = await startSignet({ env: { SIGNET__COOKIES__SAME_SITE: 'None' } });
    stops.push(none.stop);
    const context = await newContext();
    const demo = await openPage(context, demoUrl(none));
    const username = await newUser(none);
    await login(demo, username);
    assert.equal((await context.cookies(none.url)).find((c) => c.name === COOKIE)?.sameSite, 'None');

    // http://localhost is another site than http://127.0.0.1.
    const action = `${none.url}/v1/auth/refresh`;
    serveStaticPage(other, '/forge-none.html', forgery(action));
    serveStaticPage(other, '/forge-none-null.html', forgery(action, { sandboxed: true }));
    await assertRejected(await forge(context, none, `http://localhost:${other.port}/forge-none.html`), 'cross-site');
    const nullOrigin = await forge(context, none, `http://localhost:${other.port}/forge-none-null.html`);
    assert.equal(nullOrigin.requestHeaders.origin, 'null');
    await assertRejected(nullOrigin, 'cross-site, Origin: null');

    await demo.reload();
    await signedInAs(demo, username);
    await context.close();
    await none.stop();
  });
});

function serveStaticPage(server, path, html) {
  server.pages[path] = html;
}
