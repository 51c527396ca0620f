// A real OAuth 2.0 / OpenID Connect server for sessctl's integration tests.
//
//   PORT=0 node tests/oauth-server/server.mjs
//
// Binds 127.0.0.1 only. When listening, prints exactly one JSON line to stdout:
//   {"ready":true,"port":N,"issuer":"http://127.0.0.1:N"}
// and logs everything else to stderr. With EXIT_WITH_STDIN=1 it also exits when its stdin
// closes, so a test process that dies without cleaning up cannot leave it running.
//
// Three layers, outermost first:
//   1. /admin/*: the test's remote control (mint and revoke grants, stats, faults, hold, TTL, usage).
//   2. The fault/hold layer in front of the provider (the one place this server *mocks* what a real
//      server cannot be made to do on demand: 5xx, 429, garbage bodies, dropped connections,
//      slowness, requests stuck in flight). It also counts requests and converts JSON token
//      request bodies to form encoding.
//   3. node-oidc-provider itself, unmodified: token rotation, reuse detection, revocation and
//      userinfo are the real implementation's behaviour, not ours. Plus GET /api/oauth/usage,
//      a small endpoint in Claude's shape that checks bearer tokens against the provider.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { parse as parseQuery, stringify as stringifyQuery } from 'node:querystring';

import Provider from 'oidc-provider';

const CLIENT_ID = 'sessctl-test';
const DEFAULT_SCOPE = 'openid email offline_access';
/** The four paths the fault/hold layer knows, by target name. */
const TARGETS = {
  '/token': 'token',
  '/token/revocation': 'revocation',
  '/api/oauth/usage': 'usage',
  '/me': 'userinfo',
};
/** Bodies above this are refused (the provider's own limit is 56 KiB). */
const MAX_BODY_BYTES = 64 * 1024;

const log = (...args) => console.error('[oauth-server]', ...args);

// ---------------------------------------------------------------------------------------------
// Test-controlled state
// ---------------------------------------------------------------------------------------------

/** Access token lifetime for tokens minted from now on (POST /admin/access-token-ttl). */
let accessTokenTtl = 3600;
/** account id -> email, filled by POST /admin/grant; findAccount knows only these. */
const accounts = new Map();
/** account id -> usage reply overrides (POST /admin/usage). */
const usageByAccount = new Map();
/** grant id -> Set of refresh token values (jti) issued under it, to answer GET /admin/grant/<id>. */
const refreshTokensByGrant = new Map();
/** target -> queued faults, consumed one per request. */
const faults = Object.fromEntries(Object.values(TARGETS).map((t) => [t, []]));
/** target -> { on, waiters }: while on, requests to the target wait. */
const holds = Object.fromEntries(Object.values(TARGETS).map((t) => [t, { on: false, waiters: [] }]));

function freshStats() {
  return {
    token_requests: 0,
    by_grant_type: {},
    errors: {},
    revocations: 0,
    usage_requests: 0,
    userinfo_requests: 0,
    held: 0,
  };
}
let stats = freshStats();

function countError(code) {
  stats.errors[code] = (stats.errors[code] || 0) + 1;
}

// ---------------------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------------------

function makeProvider(issuer) {
  // A per-process signing key, so the provider does not fall back to its published dev keys.
  // EC, not RSA: generating it is instant, where RSA-2048 adds ~0.2-0.5 s to every test's startup.
  const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // Native: loopback http redirects are allowed on any port (RFC 8252).
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/callback'],
      id_token_signed_response_alg: 'ES256',
    }],
    async findAccount(_ctx, id) {
      if (!accounts.has(id)) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: accounts.get(id) };
        },
      };
    },
    scopes: ['openid', 'email', 'offline_access'],
    claims: { openid: ['sub'], email: ['email'] },
    // A reused refresh token gets invalid_grant and its whole grant is revoked: the hazard
    // sessctl must never trigger.
    rotateRefreshToken: true,
    features: {
      revocation: { enabled: true },
      userinfo: { enabled: true },
      devInteractions: { enabled: true },
    },
    ttl: {
      AccessToken: () => accessTokenTtl,
      RefreshToken: () => 14 * 24 * 60 * 60,
      Grant: () => 14 * 24 * 60 * 60,
      IdToken: () => 60 * 60,
      Session: () => 14 * 24 * 60 * 60,
      Interaction: () => 60 * 60,
    },
    jwks: { keys: [signingKey] },
    cookies: { keys: ['sessctl-test-only-cookie-key'] },
  });

  provider.on('grant.error', (_ctx, err) => countError(err.error || 'unknown'));
  provider.on('server_error', (_ctx, err) => {
    log('server_error', err);
    countError('server_error');
  });
  provider.on('refresh_token.saved', (token) => {
    if (!token.grantId) return;
    if (!refreshTokensByGrant.has(token.grantId)) refreshTokensByGrant.set(token.grantId, new Set());
    refreshTokensByGrant.get(token.grantId).add(token.jti);
  });
  return provider;
}

/** Mints a grant and a refresh token for `account`, exactly as a finished login would. */
async function mintGrant(provider, { account, email, scope = DEFAULT_SCOPE }) {
  if (typeof account !== 'string' || !account) throw new HttpError(400, 'account is required');
  accounts.set(account, typeof email === 'string' ? email : `${account}@example.com`);
  const grant = new provider.Grant({ accountId: account, clientId: CLIENT_ID });
  grant.addOIDCScope(scope);
  const grantId = await grant.save();
  const client = await provider.Client.find(CLIENT_ID);
  const refreshToken = new provider.RefreshToken({
    accountId: account,
    client,
    grantId,
    scope,
    gty: 'authorization_code',
    authTime: Math.floor(Date.now() / 1000),
    expiresWithSession: false,
  });
  return { refresh_token: await refreshToken.save(), grant_id: grantId };
}

/** Kills a server-side session: the grant and every token issued under it. */
async function revokeGrant(provider, grantId) {
  const existed = Boolean(await provider.Grant.find(grantId));
  await Promise.all([
    provider.AccessToken.revokeByGrantId(grantId),
    provider.RefreshToken.revokeByGrantId(grantId),
    provider.AuthorizationCode.revokeByGrantId(grantId),
    provider.Grant.adapter.destroy(grantId),
  ]);
  return { revoked: existed };
}

/** True while the grant exists and at least one refresh token issued under it is still usable. */
async function grantExists(provider, grantId) {
  if (!await provider.Grant.find(grantId)) return false;
  for (const jti of refreshTokensByGrant.get(grantId) || []) {
    const token = await provider.RefreshToken.find(jti);
    if (token && token.isValid) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// GET /api/oauth/usage (Claude's quota endpoint shape)
// ---------------------------------------------------------------------------------------------

function usageReplyFor(account) {
  const now = Date.now();
  return {
    five_hour: { utilization: 16.0, resets_at: new Date(now + 5 * 3600 * 1000).toISOString() },
    seven_day: { utilization: 42.0, resets_at: new Date(now + 7 * 24 * 3600 * 1000).toISOString() },
    seven_day_opus: null,
    extra_key: 1,
    ...usageByAccount.get(account),
  };
}

async function handleUsage(provider, req, res) {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization || '');
  const token = match ? await provider.AccessToken.find(match[1]) : undefined;
  if (!token || token.isExpired || !accounts.has(token.accountId)) {
    sendJson(res, 401, { error: 'invalid_token' });
    return;
  }
  sendJson(res, 200, usageReplyFor(token.accountId));
}

// ---------------------------------------------------------------------------------------------
// /admin/*
// ---------------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function targetOf(body) {
  const target = body.target || 'token';
  if (!(target in faults)) throw new HttpError(400, `unknown target ${target}; one of ${Object.keys(faults).join(', ')}`);
  return target;
}

function setHold(target, on) {
  const hold = holds[target];
  hold.on = Boolean(on);
  if (!hold.on) {
    for (const release of hold.waiters.splice(0)) release();
  }
}

async function handleAdmin(provider, req, res, path) {
  const body = req.method === 'POST' ? parseJsonBody(await readBody(req)) : {};
  const route = `${req.method} ${path}`;
  if (route === 'POST /admin/grant') return sendJson(res, 200, await mintGrant(provider, body));
  if (route === 'POST /admin/revoke-grant') return sendJson(res, 200, await revokeGrant(provider, String(body.grant_id)));
  if (req.method === 'GET' && path.startsWith('/admin/grant/')) {
    const id = decodeURIComponent(path.slice('/admin/grant/'.length));
    return sendJson(res, 200, { exists: await grantExists(provider, id) });
  }
  if (route === 'GET /admin/stats') {
    const holding = Object.fromEntries(Object.entries(holds).map(([t, h]) => [t, h.waiters.length]));
    return sendJson(res, 200, { ...stats, holding });
  }
  if (route === 'POST /admin/stats/reset') {
    stats = freshStats();
    return sendJson(res, 200, {});
  }
  if (route === 'POST /admin/faults') {
    const target = targetOf(body);
    if (!Array.isArray(body.faults)) throw new HttpError(400, 'faults must be an array');
    faults[target].push(...body.faults);
    return sendJson(res, 200, { queued: faults[target].length });
  }
  if (route === 'POST /admin/hold') {
    setHold(targetOf(body), body.on);
    return sendJson(res, 200, {});
  }
  if (route === 'POST /admin/access-token-ttl') {
    if (!Number.isInteger(body.seconds) || body.seconds < 1) throw new HttpError(400, 'seconds must be a positive integer');
    accessTokenTtl = body.seconds;
    return sendJson(res, 200, {});
  }
  if (route === 'POST /admin/usage') {
    const { account, ...fields } = body;
    if (typeof account !== 'string') throw new HttpError(400, 'account is required');
    usageByAccount.set(account, { ...usageByAccount.get(account), ...fields });
    return sendJson(res, 200, {});
  }
  throw new HttpError(404, `no admin route ${route}`);
}

// ---------------------------------------------------------------------------------------------
// The fault/hold layer (mock): everything here is what a test cannot make a real server do.
// ---------------------------------------------------------------------------------------------

/** Counts a request to one of the four targets; token requests are counted by grant type too. */
function countRequest(target, form) {
  if (target === 'token') {
    stats.token_requests += 1;
    const gty = (form && form.grant_type) || '(none)';
    stats.by_grant_type[gty] = (stats.by_grant_type[gty] || 0) + 1;
  } else if (target === 'revocation') {
    stats.revocations += 1;
  } else if (target === 'usage') {
    stats.usage_requests += 1;
  } else if (target === 'userinfo') {
    stats.userinfo_requests += 1;
  }
}

/** Waits while the target is on hold. */
async function waitWhileHeld(target) {
  const hold = holds[target];
  if (!hold.on) return;
  stats.held += 1;
  await new Promise((resolve) => { hold.waiters.push(resolve); });
}

/**
 * Applies the next queued fault, if any. Returns true when the fault answered (or dropped)
 * the request, false when the request should go on to the provider.
 *   {"delay_ms":N}                  wait, then pass through (or apply the fault's other fields)
 *   {"status":500}                  reply with that status and an OAuth error body
 *   {"status":429,"retry_after":"1"} ... with a Retry-After header
 *   {"status":200,"body":"not json"} reply with that raw body (an object body is sent as JSON)
 *   {"reset":true}                  destroy the socket without replying
 */
async function applyFault(target, req, res) {
  const fault = faults[target].shift();
  if (!fault) return false;
  log(`fault on ${target}:`, JSON.stringify(fault));
  if (fault.delay_ms) await new Promise((resolve) => { setTimeout(resolve, fault.delay_ms); });
  if (fault.reset) {
    req.socket.destroy();
    return true;
  }
  if (fault.status === undefined) return false;
  const headers = {};
  if (fault.retry_after !== undefined) headers['retry-after'] = String(fault.retry_after);
  let { body } = fault;
  if (body === undefined) {
    body = fault.status >= 400 ? { error: 'temporarily_unavailable', error_description: 'injected fault' } : {};
  }
  if (typeof body === 'string') {
    headers['content-type'] = fault.content_type || 'text/plain';
  } else {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(body);
  }
  if (fault.status >= 400 && target === 'token') {
    countError(fault.status === 429 ? 'http_429' : `http_${fault.status}`);
  }
  res.writeHead(fault.status, headers);
  res.end(body);
  return true;
}

/**
 * Reads a /token body so it can be counted by grant type; a JSON object body (sessctl's
 * `token_request: json` mode, as Claude's endpoint takes) is rewritten as form encoding.
 * The provider then takes the already-read body from `req.body` (its documented fallback).
 */
async function prepareTokenBody(req, res) {
  const raw = await readBody(req);
  const contentType = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  let formText = raw.toString('utf8');
  if (contentType === 'application/json') {
    let json;
    try {
      json = JSON.parse(formText);
    } catch {
      json = undefined;
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) {
      countRequest('token', undefined);
      countError('invalid_request');
      sendJson(res, 400, { error: 'invalid_request', error_description: 'body is not a JSON object' });
      return undefined;
    }
    formText = stringifyQuery(Object.fromEntries(Object.entries(json).map(([k, v]) => [k, formValue(v)])));
    req.headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  req.headers['content-length'] = String(Buffer.byteLength(formText));
  req.body = formText;
  return parseQuery(formText);
}

function formValue(value) {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.join(' ');
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseJsonBody(buffer) {
  if (buffer.length === 0) return {};
  try {
    return JSON.parse(buffer.toString('utf8'));
  } catch {
    throw new HttpError(400, 'admin bodies are JSON');
  }
}

async function handle(provider, providerCallback, req, res) {
  const path = new URL(req.url, 'http://127.0.0.1').pathname;
  if (path.startsWith('/admin/')) {
    await handleAdmin(provider, req, res, path);
    return;
  }
  const target = TARGETS[path];
  if (!target) {
    providerCallback(req, res);
    return;
  }
  let form;
  if (target === 'token' && req.method === 'POST') {
    form = await prepareTokenBody(req, res);
    if (!form) return;
  }
  countRequest(target, form);
  await waitWhileHeld(target);
  if (await applyFault(target, req, res)) return;
  if (target === 'usage') {
    await handleUsage(provider, req, res);
  } else {
    providerCallback(req, res);
  }
}

function main() {
  const port = Number(process.env.PORT || 0);
  let ready;
  const server = http.createServer((req, res) => {
    const started = Date.now();
    res.on('finish', () => log(`${req.method} ${req.url} -> ${res.statusCode} (${Date.now() - started} ms)`));
    ready.then(({ provider, callback }) => handle(provider, callback, req, res)).catch((err) => {
      if (!(err instanceof HttpError)) log('unexpected error', err);
      if (!res.headersSent && !req.socket.destroyed) {
        sendJson(res, err.status || 500, { error: err.status ? 'bad_request' : 'server_error', error_description: err.message });
      }
    });
  });
  ready = new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const actualPort = server.address().port;
      const issuer = `http://127.0.0.1:${actualPort}`;
      const provider = makeProvider(issuer);
      resolve({ provider, callback: provider.callback() });
      process.stdout.write(`${JSON.stringify({ ready: true, port: actualPort, issuer })}\n`);
    });
  });
  ready.catch((err) => {
    log('failed to start:', err);
    process.exit(1);
  });

  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (process.env.EXIT_WITH_STDIN === '1') {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('error', () => process.exit(0));
    process.stdin.resume();
  }
}

main();
