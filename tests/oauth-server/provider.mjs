// node-oidc-provider, configured for sessctl's tests, plus the model-level operations the admin
// API needs (minting and revoking grants as a finished login or a server-side logout would) and
// GET /api/oauth/usage in Claude's shape. Token rotation, reuse detection, revocation and
// userinfo are the provider's own behaviour, unmodified.
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

import { countError } from './fault_layer.mjs';
import { HttpError, log, sendJson } from './http_util.mjs';
import NeverEvictingAdapter from './store_adapter.mjs';

export const CLIENT_ID = 'sessctl-test';
/** The page a pasted-code login is redirected to; it shows `code#state`. */
export const MANUAL_CODE_PATH = '/manual-code';
/** Seconds between device-flow polls announced to clients. */
const DEVICE_POLL_INTERVAL = 1;
const DEFAULT_SCOPE = 'openid email offline_access';

/** Access token lifetime for tokens minted from now on (POST /admin/access-token-ttl). */
let accessTokenTtl = 3600;
/** account id -> email, filled by POST /admin/grant; findAccount knows only these. */
const accounts = new Map();
/** account id -> usage reply overrides (POST /admin/usage). */
const usageByAccount = new Map();
/** grant id -> Set of refresh token values (jti) issued under it, to answer GET /admin/grant/<id>. */
const refreshTokensByGrant = new Map();
/** Every access and refresh token value issued (GET /admin/issued-tokens): a test searches
 * sessctl's files for each. Opaque tokens (this provider's format) are their jti. */
const issuedTokens = { access_tokens: new Set(), refresh_tokens: new Set() };

/** The values of every access and refresh token issued so far. */
export function issuedTokenValues() {
  return {
    access_tokens: [...issuedTokens.access_tokens],
    refresh_tokens: [...issuedTokens.refresh_tokens],
  };
}

export function setAccessTokenTtl(seconds) {
  if (!Number.isInteger(seconds) || seconds < 1) throw new HttpError(400, 'seconds must be a positive integer');
  accessTokenTtl = seconds;
}

/** Merges `fields` into `account`'s usage reply. */
export function setUsage(account, fields) {
  if (typeof account !== 'string') throw new HttpError(400, 'account is required');
  usageByAccount.set(account, { ...usageByAccount.get(account), ...fields });
}

export function makeProvider(issuer) {
  // A per-process signing key, so the provider does not fall back to its published dev keys.
  // EC, not RSA: generating it is instant, where RSA-2048 adds ~0.2-0.5 s to every test's startup.
  const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

  const provider = new Provider(issuer, {
    // Not the default in-memory LRU (1,000 entries), which forgets live grants beyond ~330
    // accounts: see store_adapter.mjs.
    adapter: NeverEvictingAdapter,
    clients: [{
      client_id: CLIENT_ID,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      // Native: loopback http redirects are allowed on any port (RFC 8252), which is what
      // `sessctl login`'s listener uses, by address or as `localhost` (Claude Code's form, a
      // provider with `redirect_host: localhost`). The last is the pasted-code page
      // (server.mjs serves it, as Claude's platform shows `code#state`).
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback', `${issuer}${MANUAL_CODE_PATH}`],
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
    // Claude's scopes too, so a test can log the `claude` provider in with its own scope set
    // and see its refresh ask for them (claude_shapes.rs).
    scopes: [
      'openid', 'email', 'offline_access', 'org:create_api_key', 'user:profile', 'user:inference',
      'user:sessions:claude_code', 'user:mcp_servers', 'user:file_upload',
    ],
    claims: { openid: ['sub'], email: ['email'] },
    // A reused refresh token gets invalid_grant and its whole grant is revoked: the hazard
    // sessctl must never trigger.
    rotateRefreshToken: true,
    features: {
      revocation: { enabled: true },
      userinfo: { enabled: true },
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
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
  provider.on('access_token.saved', (token) => issuedTokens.access_tokens.add(token.jti));
  // RFC 8628 lets the server name the poll interval; oidc-provider sends none (clients then
  // wait 5 s). A short one keeps the device-flow tests quick.
  provider.on('device_authorization.success', (_ctx, body) => {
    Object.assign(body, { interval: DEVICE_POLL_INTERVAL });
  });
  provider.on('refresh_token.saved', (token) => {
    issuedTokens.refresh_tokens.add(token.jti);
    if (!token.grantId) return;
    if (!refreshTokensByGrant.has(token.grantId)) refreshTokensByGrant.set(token.grantId, new Set());
    refreshTokensByGrant.get(token.grantId).add(token.jti);
  });
  return provider;
}

/** Lets `account` log in interactively (the dev login page takes any name it knows). */
export function addAccount({ account, email }) {
  if (typeof account !== 'string' || !account) throw new HttpError(400, 'account is required');
  accounts.set(account, typeof email === 'string' ? email : `${account}@example.com`);
}

/** The pasted-code page: shows `code#state` from the redirect, as Claude's platform does. */
export function handleManualCode(req, res) {
  const query = new URL(req.url, 'http://127.0.0.1').searchParams;
  const shown = query.has('error')
    ? `error: ${query.get('error')}`
    : `${query.get('code') || ''}#${query.get('state') || ''}`;
  const escaped = shown.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const body = `<!doctype html><p>Paste this code into sessctl:</p><code id="code">${escaped}</code>\n`;
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(body);
}

/** Mints a grant and a refresh token for `account`, exactly as a finished login would. */
export async function mintGrant(provider, { account, email, scope = DEFAULT_SCOPE }) {
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
export async function revokeGrant(provider, grantId) {
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
export async function grantExists(provider, grantId) {
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

export async function handleUsage(provider, req, res) {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization || '');
  const token = match ? await provider.AccessToken.find(match[1]) : undefined;
  if (!token || token.isExpired || !accounts.has(token.accountId)) {
    sendJson(res, 401, { error: 'invalid_token' });
    return;
  }
  sendJson(res, 200, usageReplyFor(token.accountId));
}
