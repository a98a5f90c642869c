// signet demo SPA: the browser side of "cookie mode". Copy what you need.
//
// - The refresh token lives only in signet's HttpOnly cookie `__Host-signet_refresh`:
//   this script never sees it. Calls that use it send `credentials: 'include'` and the
//   header `X-Requested-With: signet` (signet's CSRF check; cross-origin it forces a
//   CORS preflight, which a forged form cannot pass).
// - The access token lives only in a variable of this module: never in localStorage,
//   sessionStorage or a cookie. A reload forgets it and gets a new one from the cookie.
// - Each refresh rotates the cookie, and presenting an already-rotated refresh token
//   revokes the session. So tabs take turns (Web Locks API) and share the token they
//   got (BroadcastChannel): a tab that waited for the lock and meanwhile received a
//   fresh token does not refresh at all; one that did not receive it yet refreshes with
//   the cookie the previous tab left behind, which is the current one. Either way both
//   tabs stay signed in, with no server-side grace window needed.

// signet's base URL: this page's origin (signet serves the demo at /demo/), or `?api=`
// when the files are served from another origin (which must be in cors.allowed_origins).
// A real app hard-codes its API URL.
const API = (new URLSearchParams(location.search).get('api') || location.origin).replace(/\/+$/, '');

let session = null; // { token, claims, expiresAt, receivedAt }: memory only
let user = null; // GET /v1/auth/me of the signed-in user
let refreshTimer;
const tabs = new BroadcastChannel('signet-session'); // same-origin tabs of this app

const $ = (id) => document.getElementById(id);

// ---- talking to signet ----------------------------------------------------------

// An Error from a problem document (RFC 9457): signet's errors carry `code` and `detail`.
async function problem(res) {
  const body = await res.json().catch(() => ({}));
  const err = new Error(`${res.status} ${body.code || res.statusText}: ${body.detail || body.title || ''}`);
  err.status = res.status;
  err.code = body.code;
  return err;
}

// fetch, with a readable message when the request never got an answer we may read.
async function request(path, options) {
  try {
    return await fetch(API + path, options);
  } catch {
    throw new Error(`Could not reach ${API}${path}: network error, or CORS refused this origin ` +
      `(${location.origin}; is it in signet's cors.allowed_origins?)`);
  }
}

// The cookie-authenticated calls: refresh and logout.
const withCookie = { method: 'POST', credentials: 'include', headers: { 'X-Requested-With': 'signet' } };

// Only one tab at a time may use the cookie. (Web Locks exist in secure contexts only.)
const exclusively = (fn) => (navigator.locks ? navigator.locks.request('signet-refresh', fn) : fn());

// POST /v1/auth/refresh with the cookie: a new access token, and a rotated cookie.
async function refresh() {
  const askedAt = Date.now();
  await exclusively(async () => {
    // Another tab refreshed while we waited for the lock and sent us its token.
    if (session && session.receivedAt >= askedAt) return;
    const res = await request('/v1/auth/refresh', withCookie);
    if (res.status === 401) forget(); // no valid cookie (any more): signed out
    if (!res.ok) throw await problem(res);
    adopt(await res.json(), true);
  });
}

// A protected call with the access token; on a 401 (expired, e.g. after the laptop
// slept through the refresh timer) refresh once and try again.
async function callApi(path) {
  const send = () => request(path, { headers: { Authorization: `Bearer ${session.token}` } });
  let res = await send();
  if (res.status === 401) {
    await refresh();
    res = await send();
  }
  if (!res.ok) throw await problem(res);
  return res.json();
}

async function login(username, password) {
  const res = await request('/v1/auth/login', {
    method: 'POST',
    credentials: 'include', // so the browser stores the Set-Cookie of a cross-origin answer
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password, token_delivery: 'cookie' }),
  });
  if (!res.ok) throw await problem(res);
  adopt(await res.json(), true);
}

async function logout() {
  await exclusively(async () => {
    const res = await request('/v1/auth/logout', withCookie);
    if (!res.ok && res.status !== 401) throw await problem(res); // 401: already gone
  });
  forget();
  tabs.postMessage({ type: 'logout' });
}

// ---- session state --------------------------------------------------------------

// Display only: the API verifies tokens, the browser just reads them.
function decodeClaims(jwt) {
  const bytes = Uint8Array.from(atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

// Keep a token pair's access token (signet's body: access_token, expires_in, ...),
// tell the other tabs, and plan the next silent refresh.
function adopt({ access_token, expires_in }, announce) {
  const expiresAt = Date.now() + expires_in * 1000;
  if (announce) tabs.postMessage({ type: 'token', access_token, expiresAt });
  useToken(access_token, expiresAt);
}

function useToken(token, expiresAt) {
  session = { token, claims: decodeClaims(token), expiresAt, receivedAt: Date.now() };
  const ttl = expiresAt - Date.now();
  const delay = Math.max(ttl - 60_000, ttl * 0.8); // a minute early, or at 80% of a short lifetime
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refresh().catch(showError), delay);
  $('expiry').textContent = `Access token expires ${clock(expiresAt)}; silent refresh at ${clock(Date.now() + delay)}.`;
  showSession().catch(showError);
}

function forget() {
  session = user = null;
  clearTimeout(refreshTimer);
  for (const id of ['me', 'claims', 'result', 'expiry']) $(id).textContent = '';
  show('signed-out', 'Not signed in.');
}

tabs.onmessage = ({ data }) => {
  if (data.type === 'token') useToken(data.access_token, data.expiresAt);
  if (data.type === 'logout') forget();
};

// ---- the page -------------------------------------------------------------------

const clock = (ms) => new Date(ms).toLocaleTimeString();

function show(state, status) {
  document.body.dataset.state = state;
  $('status').textContent = status;
  $('login').hidden = state !== 'signed-out';
  $('session').hidden = state !== 'signed-in';
}

function showError(err) {
  $('error').textContent = err ? `Error: ${err.message}` : '';
  $('error').hidden = !err;
}

async function showSession() {
  show('signed-in', `Signed in (token from ${clock(session.receivedAt)}).`);
  $('claims').textContent = JSON.stringify(session.claims, null, 2);
  if (user?.id !== session.claims.sub) {
    user = await callApi('/v1/auth/me');
    $('me').textContent = JSON.stringify(user, null, 2);
  }
  $('username').textContent = user.username;
}

// Run a button's action: clear the last error, show the new one.
const act = (fn) => (event) => {
  event.preventDefault();
  showError(null);
  fn().catch(showError);
};

$('api').textContent = API;
$('login').addEventListener('submit', act(async () => {
  const form = $('login');
  await login(form.username.value, form.password.value);
  form.password.value = '';
}));
$('call').addEventListener('click', act(async () => {
  $('result').textContent = JSON.stringify(await callApi('/v1/auth/sessions'), null, 2);
}));
$('refresh').addEventListener('click', act(refresh));
$('logout').addEventListener('click', act(logout));

// For the browser tests and the console: no token in here.
window.signetDemo = { refresh };

// On load: the cookie (if any) gets this tab an access token; else the login form,
// quietly when there simply is no session (401).
refresh().catch((err) => {
  forget();
  if (err.status !== 401) showError(err);
});
