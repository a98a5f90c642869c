// Checks a signet access token's revocation status the way a Node service would: `jose` for the
// signatures (keys straight from signet's JWKS) and node:zlib for the list.
//
// Usage: node status_node.mjs ACCESS_TOKEN_FILE ISSUER {valid|revoked} [WAIT_SECS]
//
// draft-ietf-oauth-status-list: the token's `status.status_list` names a list `uri` and an index
// `idx`; the list is a `statuslist+jwt` signed by a key of the same JWKS, `sub` = the URI,
// `status_list.lst` = base64url(zlib(bytes)); index i is bit i % 8 of byte i / 8, least significant
// first (1 = invalid). Lists are only fetched from under the issuer. With `revoked`, the list is
// refetched until the bit is set or WAIT_SECS pass. Exit status 0 when the status is as expected.
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [tokenFile, issuer, expected, waitArg] = process.argv.slice(2);
const token = readFileSync(tokenFile, 'utf8').trim();
const base = issuer.replace(/\/$/, '');
const JWKS = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));

const { payload } = await jwtVerify(token, JWKS, { issuer, audience: 'signet', typ: 'at+jwt' });
const { uri, idx } = payload.status.status_list;
if (!uri.startsWith(`${base}/v1/status-lists/`)) {
  console.error(`status_node: refusing a status list outside the issuer: ${uri}`);
  process.exit(1);
}

async function bitOf() {
  const response = await fetch(uri, { headers: { accept: 'application/statuslist+jwt' } });
  if (!response.ok) throw new Error(`GET ${uri} answered ${response.status}`);
  const list = await jwtVerify(await response.text(), JWKS, { issuer, typ: 'statuslist+jwt' });
  if (list.payload.sub !== uri) throw new Error(`list sub ${list.payload.sub} is not ${uri}`);
  const { bits, lst } = list.payload.status_list;
  if (bits !== 1) throw new Error(`expected 1 bit per entry, got ${bits}`);
  const raw = inflateSync(Buffer.from(lst, 'base64url'));
  if (Math.floor(idx / 8) >= raw.length) throw new Error(`index ${idx} beyond the list`);
  return (raw[Math.floor(idx / 8)] >> (idx % 8)) & 1;
}

const deadline = Date.now() + 1000 * Number(waitArg ?? 0);
let status;
for (;;) {
  status = (await bitOf()) === 1 ? 'revoked' : 'valid';
  if (status === expected || Date.now() >= deadline) break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
console.log(`status_node (jose): index ${idx} of ${uri} is ${status}`);
process.exit(status === expected ? 0 : 1);
