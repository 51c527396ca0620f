// A stand-in for Claude Code's token refresh, for sessctl's integration tests
// (tests/integration/claude_code_slots.rs): the algorithm of Claude Code 2.1.332 as read
// from its bundle, followed literally, with the real `proper-lockfile` package. It runs
// beside the daemon over one config dir.
//
//   node cc_standin.cjs DIR TOKEN_URL USERINFO_URL CLIENT_ID THRESHOLD_MS DURATION_MS [SPREAD_MS]
//
// (With SPREAD_MS, each token's threshold is drawn from THRESHOLD_MS ± SPREAD_MS, so that
// with short test lifetimes it sometimes refreshes before the daemon and sometimes after.)
// Every 100-300 ms: read DIR/.credentials.json; check that its access token works (GET
// USERINFO_URL); when `now + THRESHOLD_MS >= expiresAt` (Claude Code: 5 minutes), take
// DIR/.oauth_refresh.lock then <realpath DIR>.lock (stale 60 s, touched every 5 s, owner
// record written), re-read the store, and if the access token changed meanwhile (someone
// else refreshed) use it; else POST the refresh as JSON and write the result under
// DIR/.storage-write.lock (stale 15 s), atomically (temp file + rename, mode 0600), keeping
// every other field. On invalid_grant: re-read; if the store still holds the dead refresh
// token, blank the tokens as Claude Code does, print "blanked" and exit 3.
// At the end prints one JSON line: {refreshes, adopted, bad_tokens, invalid_grants}.
'use strict';

const fs = require('fs');
const path = require('path');
const lockfile = require('proper-lockfile');

const [dir, tokenUrl, userinfoUrl, clientId, thresholdArg, durationArg, spreadArg] =
  process.argv.slice(2);
const spread = Number(spreadArg ?? 0);
const thresholds = new Map();
// One draw per token (per expiresAt), so a decision does not flicker between reads.
function threshold(expiresAt) {
  if (!thresholds.has(expiresAt)) {
    thresholds.set(expiresAt, Number(thresholdArg) + (Math.random() * 2 - 1) * spread);
  }
  return thresholds.get(expiresAt);
}
const until = Date.now() + Number(durationArg);
const file = path.join(dir, '.credentials.json');
const stats = { refreshes: 0, adopted: 0, bad_tokens: 0, invalid_grants: 0 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function readStore() {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  return { doc, oauth: doc.claudeAiOauth ?? {} };
}

function writeStoreAtomically(doc) {
  const tmp = `${file}.tmp.${process.pid}.${Date.now()}`;
  fs.writeFileSync(tmp, JSON.stringify(doc), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function lockOptions(lockfilePath) {
  return {
    lockfilePath,
    realpath: false,
    stale: 60000,
    update: 5000,
    retries: { retries: 30, minTimeout: 1000, maxTimeout: 2000 },
    onCompromised: (err) => { throw err; },
  };
}

async function takeRefreshLocks() {
  const main = path.join(dir, '.oauth_refresh.lock');
  const releaseMain = await lockfile.lock(dir, lockOptions(main));
  const ownerFile = path.join(dir, '.oauth_refresh.lock.owner');
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  fs.writeFileSync(ownerFile, JSON.stringify({
    pid: process.pid,
    procStart: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
    lockBirthtimeMs: fs.lstatSync(main).birthtimeMs,
  }));
  const legacy = `${fs.realpathSync(dir)}.lock`;
  try {
    const releaseLegacy = await lockfile.lock(legacy, lockOptions(legacy));
    return async () => {
      fs.rmSync(ownerFile, { force: true });
      await releaseLegacy();
      await releaseMain();
    };
  } catch (err) {
    fs.rmSync(ownerFile, { force: true });
    await releaseMain();
    throw err;
  }
}

async function underWriteLock(work) {
  const release = await lockfile.lock(path.join(dir, '.storage-write'), {
    realpath: false,
    stale: 15000,
    retries: { retries: 10, minTimeout: 100, maxTimeout: 500 },
  });
  try {
    work();
  } finally {
    await release();
  }
}

async function tokenWorks(accessToken) {
  const reply = await fetch(userinfoUrl, { headers: { authorization: `Bearer ${accessToken}` } });
  return reply.ok;
}

async function refresh(held) {
  const release = await takeRefreshLocks();
  try {
    const { oauth } = readStore();
    if (oauth.accessToken !== held.accessToken) {
      stats.adopted += 1;
      return;
    }
    const reply = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'refresh_token',
        refresh_token: oauth.refreshToken,
        client_id: clientId,
      }),
    });
    const body = await reply.json();
    if (reply.ok) {
      stats.refreshes += 1;
      await underWriteLock(() => {
        const { doc } = readStore();
        doc.claudeAiOauth = {
          ...doc.claudeAiOauth,
          accessToken: body.access_token,
          refreshToken: body.refresh_token ?? oauth.refreshToken,
          expiresAt: Date.now() + body.expires_in * 1000,
        };
        writeStoreAtomically(doc);
      });
    } else if (body.error === 'invalid_grant') {
      stats.invalid_grants += 1;
      const { doc, oauth: now } = readStore();
      if (now.refreshToken === oauth.refreshToken) {
        doc.claudeAiOauth = { ...doc.claudeAiOauth, accessToken: '', refreshToken: '', expiresAt: 0 };
        await underWriteLock(() => writeStoreAtomically(doc));
        process.stdout.write(`blanked ${JSON.stringify(stats)}\n`);
        process.exit(3);
      }
      stats.adopted += 1;
    } else {
      throw new Error(`refresh failed: ${reply.status} ${body.error}`);
    }
  } finally {
    await release();
  }
}

async function main() {
  while (Date.now() < until) {
    const { oauth } = readStore();
    if (!(await tokenWorks(oauth.accessToken))) stats.bad_tokens += 1;
    if (Date.now() + threshold(oauth.expiresAt) >= oauth.expiresAt) await refresh(oauth);
    await sleep(100 + Math.random() * 200);
  }
  process.stdout.write(`${JSON.stringify(stats)}\n`);
}

main().catch((err) => {
  process.stdout.write(`error ${err.message}\n`);
  process.exit(1);
});
