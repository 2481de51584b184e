// A real OpenID provider on loopback for tests/oidc_signin.rs: the npm
// package oidc-provider (from the lockfile) on a random 127.0.0.1 port.
//
//   node tests/oidc/provider.mjs
//
// prints `OIDC_ISSUER=http://127.0.0.1:PORT` once it listens, and stops when
// its stdin closes (the test ends) or on SIGTERM.
//
// - One confidential client: id `pglab`, secret `pglab-secret`, redirect URI
//   http://127.0.0.1/auth/oidc/callback on any port (a "native" client, so
//   loopback ports are free, RFC 8252 7.3), code flow with PKCE.
// - Sign-in is programmatic: the interaction page is a plain form; posting
//   `login=NAME` signs in account NAME and grants the requested scopes.
//   Optional fields: `claims` (JSON merged into that account's claims) and
//   `mode`, which makes the token endpoint hand out a bad ID token for that
//   account, so that pglab's own verification must refuse it:
//     wrong-aud  re-signed with the provider's key, audience another client
//     expired    re-signed with the provider's key, expired an hour ago
//     tampered   payload changed (made an instructor), signature left as it was
// - Claims go into the ID token (conformIdTokenClaims off): preferred_username
//   (the login), groups (`pglab-instructors` for logins starting "teacher"),
//   and whatever `claims` added (e.g. classroom).

import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

/** Extra claims and token modes by account id, set at sign-in. */
const extraClaims = new Map();
const modes = new Map();

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'pglab',
    client_secret: 'pglab-secret',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/auth/oidc/callback'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['pglab-test-cookie-key'] },
  scopes: ['openid', 'profile', 'groups', 'classroom'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
    classroom: ['classroom'],
  },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: id,
          groups: id.startsWith('teacher') ? ['staff', 'pglab-instructors'] : ['students'],
          ...(extraClaims.get(id) ?? {}),
        };
      },
    };
  },
});

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const sign = (header, payload) => {
  const data = `${header}.${b64(payload)}`;
  return `${data}.${crypto.sign('sha256', Buffer.from(data), privateKey).toString('base64url')}`;
};

// After the token endpoint answered: spoil the ID token of accounts with a mode.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || !ctx.body || typeof ctx.body.id_token !== 'string') return;
  const [header, body, signature] = ctx.body.id_token.split('.');
  const payload = JSON.parse(Buffer.from(body, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  switch (modes.get(payload.sub)) {
    case 'wrong-aud':
      ctx.body.id_token = sign(header, { ...payload, aud: 'some-other-application' });
      break;
    case 'expired':
      ctx.body.id_token = sign(header, { ...payload, iat: now - 7200, exp: now - 3600 });
      break;
    case 'tampered':
      ctx.body.id_token = `${header}.${b64({ ...payload, groups: ['pglab-instructors'] })}.${signature}`;
      break;
    default:
  }
});

const readForm = (req) => new Promise((resolve, reject) => {
  let data = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { data += chunk; });
  req.on('end', () => resolve(new URLSearchParams(data)));
  req.on('error', reject);
});

async function interaction(req, res, uid, submitted) {
  const details = await provider.interactionDetails(req, res);
  if (!submitted) {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>Test provider</title>
<form method="post" action="/interaction/${uid}/login">
<input name="login"><input name="claims"><input name="mode"><button>Sign in</button></form>`);
    return;
  }
  const form = await readForm(req);
  const accountId = form.get('login');
  if (!accountId) {
    res.statusCode = 400;
    res.end('login is required');
    return;
  }
  extraClaims.set(accountId, JSON.parse(form.get('claims') || '{}'));
  modes.set(accountId, form.get('mode') || '');
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    login: { accountId },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  const match = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url);
  if (!match) {
    callback(req, res);
    return;
  }
  interaction(req, res, match[1], Boolean(match[2]) && req.method === 'POST').catch((err) => {
    res.statusCode = 500;
    res.end(`interaction failed: ${err}`);
  });
});

process.stdout.write(`OIDC_ISSUER=${issuer}\n`);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
