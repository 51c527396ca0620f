// Claude Code's side of its credential-store locks, for sessctl's integration tests
// (tests/integration/claude_code_store.rs), with the real `proper-lockfile` package:
// the same calls, paths and options Claude Code 2.1.332 makes (read from its bundle).
//
//   node lock_peer.cjs hold DIR [STALE_MS] [UPDATE_MS]
//       Takes DIR/.oauth_refresh.lock, then <realpath DIR>.lock, and writes the owner record
//       DIR/.oauth_refresh.lock.owner, as Claude Code 2.1.218+ does before a refresh; prints
//       "held", keeps them fresh (every UPDATE_MS, default 5000) until a line "release"
//       arrives on stdin, then removes the record and prints "released" (or "release-failed
//       CODE") and exits. Prints "compromised CODE" if either lock is taken from it meanwhile.
//       (Killed with SIGKILL instead, it leaves both locks and the record behind: a crash.)
//   node lock_peer.cjs hold-legacy DIR
//       Takes only <realpath DIR>.lock (proper-lockfile's default path for DIR, stale 10 s):
//       the lock older Claude Code versions hold.
//   node lock_peer.cjs hold-write DIR
//       The same for DIR/.storage-write.lock (stale 15 s), as Claude Code holds for a write.
//   node lock_peer.cjs owner DIR PID
//       Prints, as JSON, the owner record Claude Code would expect from process PID holding
//       DIR/.oauth_refresh.lock: pidDomain, pidSpace, procStart and lockBirthtimeMs computed
//       the way Claude Code 2.1.332 computes them (Linux only).
//   node lock_peer.cjs try DIR STALE_MS RETRIES [write]
//       Tries to take the refresh locks (or the storage-write lock with `write`), RETRIES
//       times 500 ms apart, judging staleness by STALE_MS; prints "acquired" (and releases)
//       or "locked CODE".
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const lockfile = require('proper-lockfile');

const [mode, dir, ...rest] = process.argv.slice(2);

function say(line) {
  process.stdout.write(`${line}\n`);
}

function refreshOptions(lockfilePath, stale, update, retries) {
  return {
    lockfilePath,
    realpath: false,
    stale,
    update,
    retries: { retries, minTimeout: 500, maxTimeout: 500 },
    onCompromised: (err) => say(`compromised ${err.code}`),
  };
}

// Claude Code's v5l(): the new lock, then the legacy one; the new one is given back when
// the legacy one is held.
async function takeRefreshLocks(stale, update, retries) {
  const main = path.join(dir, '.oauth_refresh.lock');
  const releaseMain = await lockfile.lock(dir, refreshOptions(main, stale, update, retries));
  const legacy = `${fs.realpathSync(dir)}.lock`;
  try {
    const releaseLegacy = await lockfile.lock(legacy, refreshOptions(legacy, stale, update, retries));
    // Claude Code's AYl(): the owner record, once both locks are held.
    const record = { ...expectedOwner(process.pid), legacyLockBirthtimeMs: fs.lstatSync(legacy).birthtimeMs };
    fs.writeFileSync(ownerFile(), JSON.stringify(record));
    return async () => {
      // Claude Code's CYl(): the record goes first, and only if it is still ours.
      try {
        const found = JSON.parse(fs.readFileSync(ownerFile(), 'utf8'));
        if (found.pid === record.pid && found.lockBirthtimeMs === record.lockBirthtimeMs) fs.rmSync(ownerFile());
      } catch { /* gone or unreadable: nothing of ours to remove */ }
      await releaseLegacy();
      await releaseMain();
    };
  } catch (err) {
    await releaseMain();
    throw err;
  }
}

function ownerFile() {
  return path.join(dir, '.oauth_refresh.lock.owner');
}

// Claude Code's v7t(): DIR/.storage-write.lock, stale 15 s.
async function takeWriteLock(stale, retries) {
  return lockfile.lock(path.join(dir, '.storage-write'), {
    realpath: false,
    stale,
    retries: { retries, minTimeout: 500, maxTimeout: 500 },
    onCompromised: (err) => say(`compromised ${err.code}`),
  });
}

async function hold(take) {
  const release = await take();
  say('held');
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === 'release') break;
  }
  try {
    await release();
    say('released');
  } catch (err) {
    say(`release-failed ${err.code}`);
  }
  process.exit(0);
}

async function tryOnce(stale, retries, write) {
  try {
    const release = write ? await takeWriteLock(stale, retries)
      : await takeRefreshLocks(stale, 5000, retries);
    say('acquired');
    await release();
  } catch (err) {
    say(`locked ${err.code}`);
  }
}

// Claude Code's b7l()/Yae()/ND() and the lock's lstat birthtime, for process `pid`.
function expectedOwner(pid) {
  const ns = fs.readlinkSync('/proc/self/ns/pid');
  const machineId = fs.readFileSync('/etc/machine-id', 'utf8').trim();
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return {
    pid: Number(pid),
    pidDomain: `linux:${machineId}:${ns}`,
    pidSpace: `${require('os').hostname()}#${ns}`,
    procStart: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
    lockBirthtimeMs: fs.lstatSync(path.join(dir, '.oauth_refresh.lock')).birthtimeMs,
  };
}

async function main() {
  if (mode === 'hold') {
    const stale = Number(rest[0] ?? 60000);
    const update = Number(rest[1] ?? 5000);
    await hold(() => takeRefreshLocks(stale, update, 0));
  } else if (mode === 'hold-legacy') {
    await hold(() => lockfile.lock(dir, {
      stale: 10000,
      update: 5000,
      onCompromised: (err) => say(`compromised ${err.code}`),
    }));
  } else if (mode === 'hold-write') {
    await hold(() => takeWriteLock(15000, 0));
  } else if (mode === 'owner') {
    say(JSON.stringify(expectedOwner(rest[0])));
  } else if (mode === 'try') {
    await tryOnce(Number(rest[0]), Number(rest[1]), rest[2] === 'write');
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((err) => {
  say(`error ${err.code ?? ''} ${err.message}`);
  process.exit(1);
});
