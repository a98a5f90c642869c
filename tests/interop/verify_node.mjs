// Verifies signet's tokens with Node's `jose`, keys straight from signet's JWKS.
//
// Usage: node verify_node.mjs CASES.json RESULTS.json
//
// CASES.json comes from make_cases.py. Each case is verified the way a Node service would
// verify an access token: createRemoteJWKSet picks the JWKS key by `kid` (and only one whose
// `alg` matches), jwtVerify allows signet's algorithm only and requires `iss`, `aud`, `exp`,
// the header's `typ: at+jwt`, and we require `sub` and a `roles` array. Every outcome is
// classified (valid, or the reason for the rejection) and compared with the case's
// expectation. Exit status 1 if any outcome is unexpected.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [casesPath, resultsPath] = process.argv.slice(2);
if (!casesPath || !resultsPath) {
  console.error('usage: node verify_node.mjs CASES.json RESULTS.json');
  process.exit(2);
}
const doc = JSON.parse(readFileSync(casesPath, 'utf8'));
const joseVersion = JSON.parse(
  readFileSync(new URL('./node_modules/jose/package.json', import.meta.url), 'utf8'),
).version;
const impl = `jose ${joseVersion}`;

// One per service: fetches the JWKS once, caches it, refetches on an unknown kid.
const JWKS = createRemoteJWKSet(new URL(doc.jwks_url));

async function verify(token, issuer, audience) {
  const { payload, protectedHeader } = await jwtVerify(token, JWKS, {
    issuer,
    audience,
    typ: 'at+jwt',
    algorithms: [doc.alg], // signet's configured algorithm (= its JWKS key's alg), nothing else
    clockTolerance: 30,
    requiredClaims: ['exp', 'iat', 'sub'], // nbf: checked when present
  });
  if (protectedHeader.typ !== 'at+jwt') throw Object.assign(new Error('typ'), { ours: 'typ' });
  if (!Array.isArray(payload.roles) || !payload.roles.every((r) => typeof r === 'string')) {
    throw Object.assign(new Error('no roles array'), { ours: 'missing_claim' });
  }
  return payload;
}

function classify(err) {
  if (err.ours) return err.ours;
  switch (err.code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'alg';
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'key';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return (
        { aud: 'audience', iss: 'issuer', typ: 'typ', nbf: 'not_yet_valid' }[err.claim] ??
        (err.reason === 'missing' ? 'missing_claim' : `claim_${err.claim}`)
      );
    default:
      return null;
  }
}

const results = [];
for (const c of doc.cases) {
  let got;
  let detail;
  try {
    const claims = await verify(c.token, c.issuer, c.audience);
    got = 'valid';
    detail = `sub=${claims.sub} roles=${JSON.stringify(claims.roles)}`;
  } catch (err) {
    const reason = classify(err);
    got = reason ? `rejected:${reason}` : `error:${err.code ?? err.name}`;
    detail = `${err.code ?? err.name}: ${err.message}`.slice(0, 300);
  }
  const ok = c.expect === 'valid' ? got === 'valid' : c.expect.some((r) => got === `rejected:${r}`);
  const want = c.expect === 'valid' ? 'valid' : `rejected:${c.expect.join('|')}`;
  results.push({ case: c.name, ok, got, expect: want, detail });
  const mark = ok ? 'ok  ' : 'FAIL';
  console.log(
    `  [${mark}] ${doc.alg.padEnd(6)} ${impl.padEnd(16)} ${c.name.padEnd(22)} ${got.padEnd(22)} ${detail}`,
  );
}

writeFileSync(resultsPath, JSON.stringify({ alg: doc.alg, impl, results }, null, 1));
const bad = results.filter((r) => !r.ok);
for (const r of bad) {
  console.error(`FAIL: ${impl} / ${doc.alg} / ${r.case}: expected ${r.expect}, got ${r.got} (${r.detail})`);
}
process.exit(bad.length ? 1 : 0);
