// The raw requests sessctl sends to the provider's endpoints, as they arrived (before the fault
// layer rewrites a JSON body as a form), for tests that check a request's exact shape: method,
// path, every header (names lowercase, as node gives them) and the body's fields. Token values
// never reach a test's output: every credential field of a body and the Authorization header's
// credential are replaced by "[redacted]" when recorded.

/** Body fields that carry a credential (a token, a code, a verifier, a secret). */
const CREDENTIAL_FIELDS = new Set([
  'refresh_token', 'access_token', 'token', 'code', 'code_verifier', 'client_secret', 'device_code',
]);
/** The newest requests kept. */
const MAX_RECORDED = 500;

let recorded = [];

/** The body as an object of its fields, and how it was encoded (`json`, `form`, `empty`, `other`). */
function parseBody(contentType, raw) {
  if (raw.length === 0) return { format: 'empty', fields: {} };
  const text = raw.toString('utf8');
  if (contentType === 'application/json') {
    try {
      const value = JSON.parse(text);
      if (value && typeof value === 'object' && !Array.isArray(value)) return { format: 'json', fields: value };
    } catch {
      // Recorded as `other` below.
    }
    return { format: 'other', fields: {} };
  }
  if (contentType === 'application/x-www-form-urlencoded') {
    return { format: 'form', fields: Object.fromEntries(new URLSearchParams(text)) };
  }
  return { format: 'other', fields: {} };
}

function redactFields(fields) {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, CREDENTIAL_FIELDS.has(k) ? '[redacted]' : v]));
}

function redactHeaders(headers) {
  const copy = { ...headers };
  if (copy.authorization) copy.authorization = copy.authorization.replace(/^(\S+)\s+.*$/u, '$1 [redacted]');
  return copy;
}

/** Records one request to `target` whose body (already read, possibly empty) is `raw`. */
export function recordRequest(target, req, raw) {
  const contentType = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  const { format, fields } = parseBody(contentType, raw || Buffer.alloc(0));
  recorded.push({
    target,
    method: req.method,
    path: new URL(req.url, 'http://127.0.0.1').pathname,
    headers: redactHeaders(req.headers),
    body_format: format,
    body: redactFields(fields),
  });
  if (recorded.length > MAX_RECORDED) recorded.shift();
}

export function recordedRequests() {
  return recorded;
}

export function resetRecorded() {
  recorded = [];
}
