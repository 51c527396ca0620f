// A loopback HTTPS proxy that lets the real Claude Code binary run against sessctl's test
// OAuth server (tests/integration/claude_code_real.rs). Claude Code's token URL is fixed to
// https://platform.claude.com/v1/oauth/token (CLAUDE_CODE_CUSTOM_OAUTH_URL only takes three
// Anthropic hosts), but it honours HTTPS_PROXY and NODE_EXTRA_CA_CERTS: so the test points
// HTTPS_PROXY here and trusts a CA made for the test, and this proxy answers CONNECTs to
// platform.claude.com and api.anthropic.com itself, with a certificate from that CA.
// Nothing leaves the machine: every other host is refused.
//
//   node real_client_proxy.cjs OAUTH_BASE CERT_DIR LOG_FILE
//
// CERT_DIR holds leaf.key and leaf.pem (for both host names). Prints {"ready":true,"port":N}
// once listening. Served:
//   POST platform.claude.com/v1/oauth/token   forwarded as is to OAUTH_BASE/token;
//   POST api.anthropic.com/v1/messages        a stand-in for the messages API: checks the
//                                             bearer token against the test server
//                                             (OAUTH_BASE/api/oauth/usage, which validates
//                                             access tokens) and streams the reply "pong",
//                                             or answers 401 as the real API does;
//   anything else                             404.
// Appends one JSON line per request to LOG_FILE: {host, method, path, status,
// token_works?}. No token is ever written.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');

const [oauthBase, certDir, logFile] = process.argv.slice(2);
const ALLOWED = new Set(['platform.claude.com:443', 'api.anthropic.com:443']);

function record(entry) {
  fs.appendFileSync(logFile, `${JSON.stringify(entry)}\n`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

// The messages API's streaming reply with the text "pong".
function streamPong(res) {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const event = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  event('message_start', {
    message: {
      id: 'msg_test', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [],
      stop_reason: null, stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 },
    },
  });
  event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'pong' } });
  event('content_block_stop', { index: 0 });
  event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 1 } });
  event('message_stop', {});
  res.end();
}

async function handle(req, res) {
  const body = await readBody(req);
  const entry = { host: req.headers.host, method: req.method, path: req.url.split('?')[0] };
  if (req.method === 'POST' && entry.path === '/v1/oauth/token') {
    const reply = await fetch(`${oauthBase}/token`, {
      method: 'POST',
      headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
      body,
    });
    entry.status = reply.status;
    send(res, reply.status, await reply.text());
  } else if (req.method === 'POST' && entry.path === '/v1/messages') {
    const check = await fetch(`${oauthBase}/api/oauth/usage`, {
      headers: { authorization: req.headers.authorization ?? '' },
    });
    entry.token_works = check.ok;
    if (check.ok) {
      entry.status = 200;
      streamPong(res);
    } else {
      entry.status = 401;
      send(res, 401, { type: 'error', error: { type: 'authentication_error', message: 'invalid token' } });
    }
  } else {
    entry.status = 404;
    send(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'not served here' } });
  }
  record(entry);
}

const inner = https.createServer({
  key: fs.readFileSync(`${certDir}/leaf.key`),
  cert: fs.readFileSync(`${certDir}/leaf.pem`),
}, (req, res) => handle(req, res).catch((err) => {
  record({ error: err.message });
  res.destroy();
}));

const outer = http.createServer((req, res) => {
  record({ refused: `${req.method} ${req.url}` });
  res.writeHead(403);
  res.end();
});
outer.on('connect', (req, socket, head) => {
  socket.on('error', () => {});
  if (!ALLOWED.has(req.url)) {
    record({ refused: `CONNECT ${req.url}` });
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    return;
  }
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head && head.length) socket.unshift(head);
  inner.emit('connection', socket);
});
outer.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: outer.address().port })}\n`);
});
// Exits with the test: its stdin closes when the test process goes.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
