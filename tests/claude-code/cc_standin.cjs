// A stand-in for Claude Code's token refresh, for sessctl's integration tests
// (tests/integration/claude_code_slots.rs, claude_code_standins.rs): the algorithm of Claude
// Code as read from its bundles, followed literally, with the real `proper-lockfile`
// package. It runs beside the daemon over one config dir.
//
//   node cc_standin.cjs DIRS TOKEN_URL USERINFO_URL CLIENT_ID THRESHOLD_MS DURATION_MS [SPREAD_MS] [VERSION]
//
// DIRS is one config dir, or several joined by ':': then this process is one Claude Code
// per dir (independent loops, as separate processes would be; one process keeps the load
// of a test with many dirs down).
//
// VERSION is `new` (default: 2.1.218 and later, as 2.1.332 does it) or `old` (2.1.197):
// - new: DIR/.oauth_refresh.lock, then <realpath DIR>.lock, both stale after 60 s and
//   touched every 5 s, and the owner record DIR/.oauth_refresh.lock.owner
//   {pid, procStart, pidDomain, pidSpace, lockBirthtimeMs, legacyLockBirthtimeMs} written
//   once both are held (removed on release if still ours);
// - old: only <realpath DIR>.lock (proper-lockfile's default path for DIR), stale after
//   10 s (touched every 5 s, the library's default of half the stale time), no owner record.
// (With SPREAD_MS, each token's threshold is drawn from THRESHOLD_MS ± SPREAD_MS, so that
// with short test lifetimes it sometimes refreshes before the daemon and sometimes after.
// THRESHOLD_MS may also be several thresholds joined by ',': each dir's successive tokens
// take them in turn, so that with one well before the daemon's refresh point and one well
// after it, each side certainly goes first on alternate tokens.)
// Every 100-300 ms: read DIR/.credentials.json; check that its access token works (GET
// USERINFO_URL: each new token at once, then at least every second); when `now + THRESHOLD_MS >= expiresAt` (Claude Code: 5 minutes), take the
// refresh lock(s) (retrying 1-2 s apart), re-read the store, and if the access token changed
// meanwhile (someone else refreshed) use it; else POST the refresh as JSON and write the
// result under DIR/.storage-write.lock (stale 15 s), atomically (temp file + rename, mode
// 0600), keeping every other field. On invalid_grant: re-read; if the store still holds the
// dead refresh token, blank the tokens as Claude Code does, print "blanked" and exit 3.
// At the end prints one JSON line: {refreshes, adopted, bad_tokens, invalid_grants}.
'use strict';

const fs = require('fs');
const path = require('path');
const lockfile = require('proper-lockfile');

const os = require('os');

const [dirsArg, tokenUrl, userinfoUrl, clientId, thresholdArg, durationArg, spreadArg, versionArg] =
  process.argv.slice(2);
const version = versionArg ?? 'new';
if (version !== 'new' && version !== 'old') throw new Error(`unknown version ${version}`);
const spread = Number(spreadArg ?? 0);
const thresholdCycle = thresholdArg.split(',').map(Number);
const thresholds = new Map();
// Tokens seen so far per dir: the next one takes the next threshold of the cycle.
const tokensSeen = new Map();
// One draw per token (per dir and expiresAt), so a decision does not flicker between reads.
function threshold(dir, expiresAt) {
  const key = `${dir}|${expiresAt}`;
  if (!thresholds.has(key)) {
    const seen = tokensSeen.get(dir) ?? 0;
    tokensSeen.set(dir, seen + 1);
    const base = thresholdCycle[seen % thresholdCycle.length];
    thresholds.set(key, base + (Math.random() * 2 - 1) * spread);
  }
  return thresholds.get(key);
}
const until = Date.now() + Number(durationArg);
const stats = { refreshes: 0, adopted: 0, bad_tokens: 0, invalid_grants: 0 };
// A token already checked is checked again after this long.
const CHECK_EVERY_MS = 1000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function readStore(dir) {
  const doc = JSON.parse(fs.readFileSync(path.join(dir, '.credentials.json'), 'utf8'));
  return { doc, oauth: doc.claudeAiOauth ?? {} };
}

function writeStoreAtomically(dir, doc) {
  const file = path.join(dir, '.credentials.json');
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

// Claude Code 2.1.332's b7l(), Yae() and ND() for this process.
function ownerRecord(main, legacy) {
  const ns = fs.readlinkSync('/proc/self/ns/pid');
  const machineId = fs.readFileSync('/etc/machine-id', 'utf8').trim();
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  return {
    pid: process.pid,
    procStart: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
    pidDomain: `linux:${machineId}:${ns}`,
    pidSpace: `${os.hostname()}#${ns}`,
    lockBirthtimeMs: fs.lstatSync(main).birthtimeMs,
    legacyLockBirthtimeMs: fs.lstatSync(legacy).birthtimeMs,
  };
}

// 2.1.197: lockfile.lock(DIR) takes <realpath DIR>.lock, stale 10 s, no owner record.
async function takeOldLock(dir) {
  return lockfile.lock(dir, {
    stale: 10000,
    retries: { retries: 30, minTimeout: 1000, maxTimeout: 2000 },
    onCompromised: (err) => { throw err; },
  });
}

// 2.1.332's v5l(): the new lock, then the legacy one (the new one given back when the
// legacy one is held), then the owner record.
async function takeRefreshLocks(dir) {
  if (version === 'old') return takeOldLock(dir);
  const main = path.join(dir, '.oauth_refresh.lock');
  const releaseMain = await lockfile.lock(dir, lockOptions(main));
  const ownerFile = path.join(dir, '.oauth_refresh.lock.owner');
  const legacy = `${fs.realpathSync(dir)}.lock`;
  try {
    const releaseLegacy = await lockfile.lock(legacy, lockOptions(legacy));
    const record = ownerRecord(main, legacy);
    fs.writeFileSync(ownerFile, JSON.stringify(record));
    return async () => {
      try {
        const found = JSON.parse(fs.readFileSync(ownerFile, 'utf8'));
        if (found.pid === record.pid && found.lockBirthtimeMs === record.lockBirthtimeMs) fs.rmSync(ownerFile);
      } catch { /* not ours any more */ }
      await releaseLegacy();
      await releaseMain();
    };
  } catch (err) {
    await releaseMain();
    throw err;
  }
}

async function underWriteLock(dir, work) {
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

async function refresh(dir, held) {
  const release = await takeRefreshLocks(dir);
  try {
    const { oauth } = readStore(dir);
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
      await underWriteLock(dir, () => {
        const { doc } = readStore(dir);
        doc.claudeAiOauth = {
          ...doc.claudeAiOauth,
          accessToken: body.access_token,
          refreshToken: body.refresh_token ?? oauth.refreshToken,
          expiresAt: Date.now() + body.expires_in * 1000,
        };
        writeStoreAtomically(dir, doc);
      });
    } else if (body.error === 'invalid_grant') {
      stats.invalid_grants += 1;
      const { doc, oauth: now } = readStore(dir);
      if (now.refreshToken === oauth.refreshToken) {
        doc.claudeAiOauth = { ...doc.claudeAiOauth, accessToken: '', refreshToken: '', expiresAt: 0 };
        await underWriteLock(dir, () => writeStoreAtomically(dir, doc));
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

// One Claude Code over one config dir.
async function claudeCode(dir) {
  let checked = { token: null, at: 0 };
  while (Date.now() < until) {
    const { oauth } = readStore(dir);
    if (oauth.accessToken !== checked.token || Date.now() - checked.at >= CHECK_EVERY_MS) {
      if (!(await tokenWorks(oauth.accessToken))) stats.bad_tokens += 1;
      checked = { token: oauth.accessToken, at: Date.now() };
    }
    if (Date.now() + threshold(dir, oauth.expiresAt) >= oauth.expiresAt) await refresh(dir, oauth);
    await sleep(100 + Math.random() * 200);
  }
}

Promise.all(dirsArg.split(':').map(claudeCode)).then(() => {
  process.stdout.write(`${JSON.stringify(stats)}\n`);
}, (err) => {
  process.stdout.write(`error ${err.message}\n`);
  process.exit(1);
});
