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
//   1. /admin/* (below): the test's remote control.
//   2. fault_layer.mjs: the fault/hold layer in front of the provider, the one place this server
//      *mocks* what a real server cannot be made to do on demand (5xx, 429, garbage bodies,
//      dropped connections, slowness, requests stuck in flight, replies held back after the
//      provider has processed the request). It also counts requests and
//      converts JSON token and revocation request bodies to form encoding (after recorder.mjs
//      has kept the request as it arrived).
//   3. provider.mjs: node-oidc-provider itself, unmodified: token rotation, reuse detection,
//      revocation, userinfo, the authorization-code flow with PKCE and the device flow (its dev
//      login/consent and device pages) are the real implementation's behaviour, not ours. Plus
//      GET /manual-code, the page a pasted-code login lands on (shows `code#state`). Plus
//      GET /api/oauth/usage, a small endpoint in Claude's shape that checks bearer tokens
//      against the provider. Its storage (store_adapter.mjs) is a Map that forgets only
//      expired entries, not the default 1,000-entry LRU, so thousands of grants stay live.
//
// Admin API (JSON in and out):
//   POST /admin/grant {"account","email","scope"?} -> {"refresh_token","grant_id"}  (as if logged in)
//   POST /admin/account {"account","email"}       -> {}  (may log in on the dev login page)
//   POST /admin/revoke-grant {"grant_id"}          -> {"revoked":bool}  (server-side session gone)
//   GET  /admin/grant/<id>                         -> {"exists":bool}   (grant + a usable refresh token)
//   GET  /admin/stats                              -> counters (in_flight / in_flight_max: requests
//                                                     served at once, by target); POST /admin/stats/reset zeroes them
//   POST /admin/faults {"target","faults":[...]}   (appends; targets: token revocation usage userinfo;
//                                                     device (the device authorization endpoint);
//                                                     kinds listed at applyFault in fault_layer.mjs)
//   POST /admin/hold {"target","on":bool}
//   POST /admin/hold-replies {"target","on":bool}  (requests reach the provider, which rotates a
//                                                     refresh token as usual; its *reply* waits
//                                                     until turned off: stats.holding_replies)
//   POST /admin/release {"target","newest"?:bool}  -> {"released":0|1}  (one held request, hold stays on)
//   POST /admin/access-token-ttl {"seconds":N}     (tokens minted from now on)
//   POST /admin/usage {"account", "five_hour"?, "seven_day"?, ...}  (merged into that account's reply)
//   GET  /admin/issued-tokens                      -> {"access_tokens":[...],"refresh_tokens":[...]}
//                                                     (every value issued, for leak searches)
//   GET  /admin/requests                           -> {"requests":[{target,method,path,headers,
//                                                     body_format,body}]} (as received, credentials
//                                                     redacted: recorder.mjs); POST /admin/stats/reset
//                                                     clears them too
import http from 'node:http';

import {
  TARGETS, applyFault, countRequest, holdReplyIfOn, prepareFormBody, queueFaults, releaseOne, resetStats,
  setHold, setReplyHold, statsSnapshot, targetOf, trackInFlight, waitWhileHeld,
} from './fault_layer.mjs';
import { HttpError, log, parseJsonBody, readBody, sendJson } from './http_util.mjs';
import {
  MANUAL_CODE_PATH, addAccount, grantExists, handleManualCode, handleUsage, issuedTokenValues,
  makeProvider, mintGrant, revokeGrant, setAccessTokenTtl, setUsage,
} from './provider.mjs';
import { recordRequest, recordedRequests, resetRecorded } from './recorder.mjs';

/** The test's remote control: the admin API listed at the top of this file. */
async function handleAdmin(provider, req, res, path) {
  const body = req.method === 'POST' ? parseJsonBody(await readBody(req)) : {};
  const route = `${req.method} ${path}`;
  if (route === 'POST /admin/grant') return sendJson(res, 200, await mintGrant(provider, body));
  if (route === 'POST /admin/account') {
    addAccount(body);
    return sendJson(res, 200, {});
  }
  if (route === 'POST /admin/revoke-grant') return sendJson(res, 200, await revokeGrant(provider, String(body.grant_id)));
  if (req.method === 'GET' && path.startsWith('/admin/grant/')) {
    const id = decodeURIComponent(path.slice('/admin/grant/'.length));
    return sendJson(res, 200, { exists: await grantExists(provider, id) });
  }
  if (route === 'GET /admin/stats') return sendJson(res, 200, statsSnapshot());
  if (route === 'GET /admin/issued-tokens') return sendJson(res, 200, issuedTokenValues());
  if (route === 'GET /admin/requests') return sendJson(res, 200, { requests: recordedRequests() });
  if (route === 'POST /admin/stats/reset') {
    resetStats();
    resetRecorded();
    return sendJson(res, 200, {});
  }
  if (route === 'POST /admin/faults') return sendJson(res, 200, { queued: queueFaults(targetOf(body), body.faults) });
  if (route === 'POST /admin/hold') {
    setHold(targetOf(body), body.on);
    return sendJson(res, 200, {});
  }
  if (route === 'POST /admin/hold-replies') {
    setReplyHold(targetOf(body), body.on);
    return sendJson(res, 200, {});
  }
  if (route === 'POST /admin/release') return sendJson(res, 200, { released: releaseOne(targetOf(body), Boolean(body.newest)) });
  if (route === 'POST /admin/access-token-ttl') {
    setAccessTokenTtl(body.seconds);
    return sendJson(res, 200, {});
  }
  if (route === 'POST /admin/usage') {
    const { account, ...fields } = body;
    setUsage(account, fields);
    return sendJson(res, 200, {});
  }
  throw new HttpError(404, `no admin route ${route}`);
}

async function handle(provider, providerCallback, req, res) {
  const path = new URL(req.url, 'http://127.0.0.1').pathname;
  if (path.startsWith('/admin/')) {
    await handleAdmin(provider, req, res, path);
    return;
  }
  if (path === MANUAL_CODE_PATH) {
    handleManualCode(req, res);
    return;
  }
  const target = TARGETS[path];
  if (!target) {
    providerCallback(req, res);
    return;
  }
  let form;
  if ((target === 'token' || target === 'revocation') && req.method === 'POST') {
    const raw = await readBody(req);
    recordRequest(target, req, raw);
    form = prepareFormBody(target, req, res, raw);
    if (!form) return;
  } else {
    recordRequest(target, req, undefined);
  }
  countRequest(target, form);
  trackInFlight(target, res);
  await waitWhileHeld(target);
  if (await applyFault(target, req, res)) return;
  holdReplyIfOn(target, res);
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
