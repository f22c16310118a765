// A real OpenID Connect provider (the certified `oidc-provider` package) for the tests, on
// 127.0.0.1, plus test-only admin endpoints under /__admin/. Never expose it: the admin
// endpoints sign arbitrary tokens.
//
//   PORT=0 PROVIDER_CONFIG='{"clients":[...],"audience":"https://api.example"}' node server.mjs
//
// Prints ONE JSON line when listening: {"issuer":"http://127.0.0.1:PORT","port":PORT}.
//
// PROVIDER_CONFIG (JSON), all optional:
//   clients               oidc-provider client metadata (client_id, client_secret, grant_types,
//                         redirect_uris, token_endpoint_auth_method, ...). Default: one client
//                         "test" / secret "test-secret" allowed every grant used here.
//   audience              resource indicator = `aud` of the JWT access tokens (default
//                         "https://oauthlink.test").
//   resource_scopes       scopes of that resource server (default "api").
//   access_token_ttl      seconds (default 300).
//   rotate_refresh_tokens refresh-token rotation on every use (default false).
//   alg                   signing alg of the initial key: RS256 (default), ES256, EdDSA.
//
// Admin endpoints (plain JSON):
//   GET  /__admin/stats          {"jwks","discovery","token","token_by_grant":{..},"refresh_tokens_used":[..],"requests"}
//   POST /__admin/stats/reset
//   POST /__admin/rotate         {"alg":"RS256","keep_old":true} -> {"kid"}: new key first in the JWKS
//   POST /__admin/mode           {"token_delay_ms":N,"down":bool,"drop":bool} down: every non-admin
//                                route answers 503 (or drops the connection when drop is true)
//   POST /__admin/login          {"client_id","sub","scope","claims":{..}} -> the token endpoint's JSON
//                                after a REAL authorization-code + PKCE flow over HTTP
//   POST /__admin/client_credentials {"client_id","client_secret","scope"} -> token endpoint's JSON
//   POST /__admin/sign           {"claims":{..},"header":{..}} -> {"token"} signed with the current key;
//                                defaults iss/aud/iat/exp/jti, a claim set to null is left out
//   POST /__admin/revoke         {"client_id","token"} -> proxies to the real revocation endpoint
import fs from 'node:fs';
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';

const config = JSON.parse(process.env.PROVIDER_CONFIG || '{}');
const audience = config.audience || 'https://oauthlink.test';
const resourceScopes = config.resource_scopes || 'api';
const accessTokenTtl = config.access_token_ttl || 300;
const clients = config.clients || [
  {
    client_id: 'test',
    client_secret: 'test-secret',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    redirect_uris: ['http://127.0.0.1/callback'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: `openid offline_access profile email ${resourceScopes}`,
  },
];

const cookieKeys = [crypto.randomBytes(32).toString('hex')];
// Extra claims per account (from /__admin/login), put into its access tokens and userinfo.
const accounts = new Map();
// Logins in progress, by their `state`: the interaction handler finishes them without a UI.
const pendingLogins = new Map();

let stats;
function resetStats() {
  stats = { jwks: 0, discovery: 0, token: 0, token_by_grant: {}, refresh_tokens_used: [], requests: 0 };
}
resetStats();
const mode = { token_delay_ms: 0, down: false, drop: false };

async function newKey(alg) {
  const options = alg === 'EdDSA' ? { crv: 'Ed25519', extractable: true } : { extractable: true };
  const { privateKey } = await generateKeyPair(alg, options);
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg, use: 'sig', kid: crypto.randomBytes(8).toString('hex') };
}

// The signing keys, current first. oidc-provider reads its keystore once at construction, so a
// rotation builds a new Provider over the same (module-wide) memory adapter: grants, sessions
// and refresh tokens survive it.
let keys = [await newKey(config.alg || 'RS256')];
let provider;
let handler;

function buildProvider(issuer) {
  const alg = keys[0].alg;
  const p = new Provider(issuer, {
    clients: clients.map((c) => ({ id_token_signed_response_alg: alg, ...c })),
    jwks: { keys },
    cookies: { keys: cookieKeys },
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      RefreshToken: 24 * 3600,
      Grant: 24 * 3600,
      Session: 24 * 3600,
      Interaction: 600,
      AuthorizationCode: 60,
    },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', ...resourceScopes.split(' ')],
    pkce: { required: () => true },
    rotateRefreshToken: () => Boolean(config.rotate_refresh_tokens),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== audience) throw new Provider.errors.InvalidTarget();
          return {
            scope: resourceScopes,
            audience,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: keys[0].alg } },
          };
        },
      },
    },
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, ...(accounts.get(id) || {}) }),
    }),
    extraTokenClaims: (ctx, token) => (token.accountId ? accounts.get(token.accountId) : undefined),
  });
  p.on('server_error', (ctx, err) => console.error('provider server_error', err));
  // Counts what the tests assert on, after the provider has parsed the request.
  p.use(async (ctx, next) => {
    await next();
    stats.requests += 1;
    if (ctx.path === '/jwks') stats.jwks += 1;
    if (ctx.path === '/.well-known/openid-configuration') stats.discovery += 1;
    if (ctx.path === '/token') {
      stats.token += 1;
      const grant = ctx.oidc?.params?.grant_type || 'unknown';
      stats.token_by_grant[grant] = (stats.token_by_grant[grant] || 0) + 1;
      if (grant === 'refresh_token' && ctx.oidc.params.refresh_token) {
        stats.refresh_tokens_used.push(ctx.oidc.params.refresh_token);
      }
    }
  });
  return p;
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function clientById(id) {
  const client = clients.find((c) => c.client_id === id);
  if (!client) throw new Error(`unknown client ${id}`);
  return client;
}

// Client authentication as the client registered it.
function authenticate(client, headers, form) {
  if (client.token_endpoint_auth_method === 'client_secret_post') {
    form.set('client_id', client.client_id);
    form.set('client_secret', client.client_secret);
  } else if (client.token_endpoint_auth_method === 'none') {
    form.set('client_id', client.client_id);
  } else {
    const basic = `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`;
    headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
  }
}

async function postForm(issuer, path, client, params) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const form = new URLSearchParams(params);
  authenticate(client, headers, form);
  const res = await fetch(`${issuer}${path}`, { method: 'POST', headers, body: form });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

// A real authorization-code + PKCE flow against this provider, following its redirects with a
// cookie jar the way a browser would; the interaction step is finished by `interaction()`.
async function login(issuer, { client_id, sub, scope, claims }) {
  const client = clientById(client_id);
  accounts.set(sub, claims || {});
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const state = crypto.randomBytes(16).toString('base64url');
  const redirectUri = client.redirect_uris[0];
  const wanted = scope || 'openid';
  pendingLogins.set(state, { sub, scope: wanted });
  const url = new URL(`${issuer}/auth`);
  url.search = new URLSearchParams({
    client_id,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: wanted,
    state,
    nonce: crypto.randomBytes(16).toString('base64url'),
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource: audience,
    prompt: 'consent',
  }).toString();
  const jar = new Map();
  let next = url.toString();
  try {
    for (let hop = 0; hop < 20; hop += 1) {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await fetch(next, { redirect: 'manual', headers: cookie ? { cookie } : {} });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const i = pair.indexOf('=');
        jar.set(pair.slice(0, i), pair.slice(i + 1));
      }
      const location = res.headers.get("location");
      if (process.env.DEBUG_LOGIN) console.error("hop", res.status, next, "->", location, [...jar.keys()]);
      if (!location) {
        throw new Error(`login stopped at ${next}: ${res.status} ${await res.text()}`);
      }
      const target = new URL(location, next);
      if (target.toString().startsWith(redirectUri)) {
        const error = target.searchParams.get('error');
        if (error) throw new Error(`authorization error ${error}: ${target.searchParams.get('error_description')}`);
        if (target.searchParams.get('state') !== state) throw new Error('state mismatch');
        const code = target.searchParams.get('code');
        const token = await postForm(issuer, '/token', client, {
          grant_type: 'authorization_code',
          code,
          redirect_uri: redirectUri,
          code_verifier: verifier,
        });
        if (token.status !== 200) throw new Error(`token endpoint ${token.status}: ${JSON.stringify(token.body)}`);
        return token.body;
      }
      next = target.toString();
    }
    throw new Error('too many redirects');
  } finally {
    pendingLogins.delete(state);
  }
}

// The provider's interaction (login, then consent) for a login started by `login()`.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const pending = pendingLogins.get(details.params.state);
  if (!pending) {
    send(res, 400, { error: 'no login pending for this interaction' });
    return;
  }
  let result;
  if (details.prompt.name === 'login') {
    result = { login: { accountId: pending.sub } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    // The resource scopes are listed among the provider's scopes too, so both sets get them.
    grant.addOIDCScope(pending.scope);
    const resourceScope = pending.scope.split(' ').filter((s) => resourceScopes.split(' ').includes(s)).join(' ');
    grant.addResourceScope(audience, resourceScope);
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

async function sign(issuer, { claims = {}, header = {} }) {
  const key = keys[0];
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: issuer, aud: audience, iat: now, exp: now + accessTokenTtl, jti: crypto.randomUUID(), ...claims };
  for (const [k, v] of Object.entries(payload)) if (v === null) delete payload[k];
  const protectedHeader = { alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header };
  const token = await new SignJWT(payload).setProtectedHeader(protectedHeader).sign(await importJWK(key, key.alg));
  return { token };
}

async function admin(req, res, path, issuer) {
  const body = req.method === 'POST' ? await readJson(req) : {};
  switch (`${req.method} ${path}`) {
    case 'GET /__admin/stats':
      return send(res, 200, stats);
    case 'POST /__admin/stats/reset':
      resetStats();
      return send(res, 200, {});
    case 'POST /__admin/rotate': {
      const key = await newKey(body.alg || keys[0].alg);
      keys = body.keep_old === false ? [key] : [key, ...keys];
      provider = buildProvider(issuer);
      handler = provider.callback();
      return send(res, 200, { kid: key.kid, kids: keys.map((k) => k.kid) });
    }
    case 'POST /__admin/mode':
      Object.assign(mode, body);
      return send(res, 200, mode);
    case 'POST /__admin/login':
      return send(res, 200, await login(issuer, body));
    case 'POST /__admin/client_credentials': {
      const client = { ...clientById(body.client_id) };
      if (body.client_secret) client.client_secret = body.client_secret;
      const r = await postForm(issuer, '/token', client, {
        grant_type: 'client_credentials',
        scope: body.scope || resourceScopes,
        resource: audience,
      });
      return send(res, r.status, r.body);
    }
    case 'POST /__admin/sign':
      return send(res, 200, await sign(issuer, body));
    case 'POST /__admin/revoke': {
      const r = await postForm(issuer, '/token/revocation', clientById(body.client_id || clients[0].client_id), {
        token: body.token,
      });
      return send(res, r.status, r.body);
    }
    default:
      return send(res, 404, { error: `no admin route ${req.method} ${path}` });
  }
}

const server = http.createServer(async (req, res) => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const path = new URL(req.url, issuer).pathname;
  try {
    if (path.startsWith('/__admin/')) return await admin(req, res, path, issuer);
    if (mode.down) {
      if (mode.drop) return req.socket.destroy();
      return send(res, 503, { error: 'provider down (test mode)' });
    }
    if (path === '/token' && mode.token_delay_ms > 0) {
      await new Promise((r) => setTimeout(r, mode.token_delay_ms));
    }
    if (path.startsWith('/interaction/')) return await interaction(req, res);
    return handler(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) send(res, 500, { error: String(err.message || err) });
    return undefined;
  }
});

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  provider = buildProvider(issuer);
  handler = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

// The test harness kills the process; when stdin is a pipe, its closing (the parent is gone,
// even killed) ends it too.
if (fs.fstatSync(0).isFIFO()) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
