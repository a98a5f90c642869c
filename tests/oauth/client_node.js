// signet's OAuth 2.0 endpoints driven by openid-client (Node), as a service would.
// Usage: node client_node.js BASE CLIENT_ID CLIENT_SECRET REFRESH_TOKEN
// Discovery (Issuer.discover), client credentials (client_secret_basic and
// client_secret_post), introspection, refresh as the public client `signet`,
// revocation of access and refresh tokens. Exits non-zero at the first surprise.
'use strict';

const { Issuer } = require('openid-client');

const [base, clientId, clientSecret, refreshToken] = process.argv.slice(2);

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

function check(cond, what) {
  if (!cond) {
    console.error(`openid-client: FAIL: ${what}`);
    process.exit(1);
  }
  console.log(`openid-client: ok: ${what}`);
}

async function rejects(promise, error, what) {
  try {
    await promise;
    check(false, what);
  } catch (err) {
    check(err.error === error, `${what} (${err.error})`);
  }
}

async function main() {
  const issuer = await Issuer.discover(base);
  check(issuer.issuer === base, 'discovery: issuer');
  check(issuer.token_endpoint === `${base}/oauth/token`, 'discovery: token_endpoint');
  check(issuer.introspection_endpoint === `${base}/oauth/introspect`, 'discovery: introspection_endpoint');
  check(issuer.revocation_endpoint === `${base}/oauth/revoke`, 'discovery: revocation_endpoint');

  for (const method of ['client_secret_basic', 'client_secret_post']) {
    const client = new issuer.Client({ client_id: clientId, client_secret: clientSecret, token_endpoint_auth_method: method });
    const set = await client.grant({ grant_type: 'client_credentials', scope: 'reports.read' });
    check(set.token_type === 'Bearer' && set.scope === 'reports.read' && !set.refresh_token, `client credentials (${method})`);
    const c = claims(set.access_token);
    check(c.sub === clientId && c.client_id === clientId && c.roles.join() === 'reports.read', `RFC 9068 claims (${method})`);
  }

  const service = new issuer.Client({ client_id: clientId, client_secret: clientSecret });
  const set = await service.grant({ grant_type: 'client_credentials' });
  const info = await service.introspect(set.access_token);
  check(info.active === true && info.sub === clientId, 'introspection: active');

  const wrong = new issuer.Client({ client_id: clientId, client_secret: `${clientSecret}x` });
  await rejects(wrong.grant({ grant_type: 'client_credentials' }), 'invalid_client', 'a wrong secret is refused');
  await rejects(service.grant({ grant_type: 'client_credentials', scope: 'admin' }), 'invalid_scope', 'a role the client lacks');

  // Refresh as the public client; the rotated token works, the old one is spent.
  const user = new issuer.Client({ client_id: 'signet', token_endpoint_auth_method: 'none' });
  const pair = await user.refresh(refreshToken);
  check(pair.refresh_token && pair.refresh_token !== refreshToken, 'refresh (public client signet) rotates');
  check((await service.introspect(pair.access_token)).active === true, 'the refreshed access token is active');

  // Revocation: the client-credentials token, then the user's refresh token (public client).
  await service.revoke(set.access_token);
  check(JSON.stringify(await service.introspect(set.access_token)) === '{"active":false}', 'revoked: inactive, nothing else');
  await user.revoke(pair.refresh_token, 'refresh_token');
  check((await service.introspect(pair.access_token)).active === false, 'revoking the refresh token ends its session');
  await rejects(user.refresh(pair.refresh_token), 'invalid_grant', 'a revoked refresh token');
  await service.revoke('no-such-token');
  check(true, 'unknown token: 200');
  console.log('openid-client: all checks passed');
}

main().catch((err) => {
  console.error('openid-client: FAIL:', err);
  process.exit(1);
});
