// The fault/hold layer in front of the provider. This is the one place the test server *mocks*:
// it makes happen what a real server cannot be made to do on demand (5xx, 429, garbage bodies,
// dropped connections, slowness, requests stuck in flight). It also counts requests per target
// and converts JSON token and revocation bodies to form encoding. It never changes what the provider decides.
import { parse as parseQuery, stringify as stringifyQuery } from 'node:querystring';

import { HttpError, log, sendJson } from './http_util.mjs';

/** The paths this layer knows, by target name. */
export const TARGETS = {
  '/token': 'token',
  '/token/revocation': 'revocation',
  '/api/oauth/usage': 'usage',
  '/me': 'userinfo',
  '/device/auth': 'device',
};

/** target -> queued faults, consumed one per request. */
const faults = Object.fromEntries(Object.values(TARGETS).map((t) => [t, []]));
/** target -> { on, waiters }: while on, requests to the target wait. */
const holds = Object.fromEntries(Object.values(TARGETS).map((t) => [t, { on: false, waiters: [] }]));
/**
 * target -> { on, waiters }: while on, requests go through to the provider (a refresh really
 * rotates) and only the *reply* waits: the window between the server's rotation and the
 * client's receipt of the new token, held open for as long as a test needs.
 */
const replyHolds = Object.fromEntries(Object.values(TARGETS).map((t) => [t, { on: false, waiters: [] }]));

function freshStats() {
  return {
    token_requests: 0,
    // When each token request arrived (ms since the epoch), the newest 1000: a test checks
    // the gaps between requests as the server saw them.
    token_request_times_ms: [],
    by_grant_type: {},
    errors: {},
    revocations: 0,
    usage_requests: 0,
    // When each usage request arrived (ms since the epoch), so a test can check the gaps
    // between requests as the server saw them; the newest 1000 are kept.
    usage_request_times_ms: [],
    userinfo_requests: 0,
    held: 0,
    replies_held: 0,
    // Requests being served right now by target (from arrival until the reply is sent or the
    // connection is gone), and the most ever at once: a client's concurrency as seen here.
    in_flight: Object.fromEntries(Object.values(TARGETS).map((t) => [t, 0])),
    in_flight_max: Object.fromEntries(Object.values(TARGETS).map((t) => [t, 0])),
  };
}
let stats = freshStats();

/** The counters, plus how many requests are waiting on a hold right now, by target. */
export function statsSnapshot() {
  const holding = Object.fromEntries(Object.entries(holds).map(([t, h]) => [t, h.waiters.length]));
  const holding_replies = Object.fromEntries(Object.entries(replyHolds).map(([t, h]) => [t, h.waiters.length]));
  return { ...stats, holding, holding_replies };
}

export function resetStats() {
  stats = freshStats();
}

/** Counts an error reply by its OAuth `error` code (the provider's, or `http_<status>` for ours). */
export function countError(code) {
  stats.errors[code] = (stats.errors[code] || 0) + 1;
}

/** Validates an admin body's `target` (default `token`). */
export function targetOf(body) {
  const target = body.target || 'token';
  if (!(target in faults)) throw new HttpError(400, `unknown target ${target}; one of ${Object.keys(faults).join(', ')}`);
  return target;
}

/** Appends faults to a target's queue; returns the queue length. */
export function queueFaults(target, list) {
  if (!Array.isArray(list)) throw new HttpError(400, 'faults must be an array');
  faults[target].push(...list);
  return faults[target].length;
}

/** Turns a hold on or off; turning it off releases every waiting request. */
export function setHold(target, on) {
  const hold = holds[target];
  hold.on = Boolean(on);
  if (!hold.on) {
    for (const release of hold.waiters.splice(0)) release();
  }
}

/**
 * Turns the reply hold on or off; turning it off sends every held reply (to a client that
 * may have gone meanwhile: then the reply is lost, as it would be in real life).
 */
export function setReplyHold(target, on) {
  const hold = replyHolds[target];
  hold.on = Boolean(on);
  if (!hold.on) {
    for (const send of hold.waiters.splice(0)) send();
  }
}

/**
 * While the target's reply hold is on, lets the provider process this request but keeps its
 * reply back: the provider answers with res.end(body), which is deferred until the hold is
 * turned off. A reply produced after the hold went off is sent at once.
 */
export function holdReplyIfOn(target, res) {
  const hold = replyHolds[target];
  if (!hold.on) return;
  const end = res.end.bind(res);
  res.end = (...args) => {
    if (!hold.on) return end(...args);
    stats.replies_held += 1;
    hold.waiters.push(() => end(...args));
    return res;
  };
}

/**
 * Lets one held request through while the hold stays on: the oldest, or with `newest` the
 * most recent. Returns how many were released (0 when none was waiting). This is how a test
 * makes two requests finish in an order other than the one they arrived in.
 */
export function releaseOne(target, newest) {
  const { waiters } = holds[target];
  const release = newest ? waiters.pop() : waiters.shift();
  if (!release) return 0;
  release();
  return 1;
}

/**
 * Counts a request as in flight until its reply is sent or its connection is gone, and keeps
 * the high-water mark. A stats reset meanwhile starts from zero (the old request is not
 * subtracted from the new counts).
 */
export function trackInFlight(target, res) {
  const counted = stats;
  counted.in_flight[target] += 1;
  counted.in_flight_max[target] = Math.max(counted.in_flight_max[target], counted.in_flight[target]);
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    counted.in_flight[target] -= 1;
  };
  res.on('finish', end);
  res.on('close', end);
}

/** Counts a request to one of the four targets; token requests are counted by grant type too. */
export function countRequest(target, form) {
  if (target === 'token') {
    stats.token_requests += 1;
    stats.token_request_times_ms.push(Date.now());
    if (stats.token_request_times_ms.length > 1000) stats.token_request_times_ms.shift();
    const gty = (form && form.grant_type) || '(none)';
    stats.by_grant_type[gty] = (stats.by_grant_type[gty] || 0) + 1;
  } else if (target === 'revocation') {
    stats.revocations += 1;
  } else if (target === 'usage') {
    stats.usage_requests += 1;
    stats.usage_request_times_ms.push(Date.now());
    if (stats.usage_request_times_ms.length > 1000) stats.usage_request_times_ms.shift();
  } else if (target === 'userinfo') {
    stats.userinfo_requests += 1;
  }
}

/**
 * Waits while the target is on hold. A request whose client gives up meanwhile still goes on to
 * the provider when released, as a slow real server would still process it.
 */
export async function waitWhileHeld(target) {
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
 *   {"drop_response":true}          pass through (a refresh really rotates), then destroy the
 *                                   socket instead of sending the reply: the lost-response case
 *   {"rewrite":{...}}               pass through (a refresh really rotates, reuse detection
 *                                   stays real), then change the provider's 200 JSON reply
 *                                   before it is sent. Keys of `rewrite`:
 *                                     set:   {"field": value}  fields replaced or added
 *                                     raw:   {"field": "text"} fields added as literal JSON text
 *                                            (numbers JSON.stringify cannot write: 18446744073709551615)
 *                                     drop:  ["field"]         fields removed
 *                                     pad_bytes: N             a "pad" field of N bytes, last
 *                                   A reply that is not a 200 JSON object is sent unchanged.
 */
export async function applyFault(target, req, res) {
  const fault = faults[target].shift();
  if (!fault) return false;
  log(`fault on ${target}:`, JSON.stringify(fault));
  if (fault.delay_ms) await new Promise((resolve) => { setTimeout(resolve, fault.delay_ms); });
  if (fault.reset) {
    req.socket.destroy();
    return true;
  }
  if (fault.drop_response) {
    // The provider answers with res.end(body); swallow that and cut the connection instead.
    res.end = () => {
      req.socket.destroy();
      return res;
    };
    return false;
  }
  if (fault.rewrite) {
    rewriteReply(res, fault.rewrite);
    return false;
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
 * Makes `res` rewrite the provider's reply (see the `rewrite` fault). The provider (koa) sends
 * its body with one res.end(text) and sets Content-Length before it, so both are replaced there.
 */
function rewriteReply(res, rewrite) {
  const end = res.end.bind(res);
  res.end = (chunk, ...rest) => {
    let object;
    try {
      object = res.statusCode === 200 && chunk !== undefined ? JSON.parse(chunk.toString('utf8')) : undefined;
    } catch {
      object = undefined;
    }
    if (!object || typeof object !== 'object' || Array.isArray(object)) return end(chunk, ...rest);
    for (const field of rewrite.drop || []) delete object[field];
    Object.assign(object, rewrite.set || {});
    const raw = Object.entries(rewrite.raw || {}).map(([k, v]) => `${JSON.stringify(k)}:${v}`);
    if (rewrite.pad_bytes) raw.push(`"pad":${JSON.stringify('x'.repeat(rewrite.pad_bytes))}`);
    let text = JSON.stringify(object);
    if (raw.length) text = `${text.slice(0, -1)}${Object.keys(object).length ? ',' : ''}${raw.join(',')}}`;
    if (!res.headersSent) res.setHeader('content-length', Buffer.byteLength(text));
    return end(text, ...rest.filter((r) => typeof r === 'function'));
  };
}

/**
 * Takes a /token or /token/revocation body already read (`raw`) so it can be counted by grant
 * type; a JSON object body (sessctl's `token_request: json` and `revoke_request: json` modes,
 * as Claude's endpoints take) is rewritten as form encoding. The provider then takes the
 * already-read body from `req.body` (its documented fallback).
 */
export function prepareFormBody(target, req, res, raw) {
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
      countRequest(target, undefined);
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
