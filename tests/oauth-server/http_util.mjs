// HTTP helpers shared by the server's layers: JSON replies, bounded body reads, stderr logging.

/** Bodies above this are refused (the provider's own limit is 56 KiB). */
const MAX_BODY_BYTES = 64 * 1024;

export const log = (...args) => console.error('[oauth-server]', ...args);

/** An error answered with its status and message (a client or test mistake, not a crash). */
export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export function parseJsonBody(buffer) {
  if (buffer.length === 0) return {};
  try {
    return JSON.parse(buffer.toString('utf8'));
  } catch {
    throw new HttpError(400, 'admin bodies are JSON');
  }
}
