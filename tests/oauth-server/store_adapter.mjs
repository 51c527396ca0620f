// The provider's storage for tests: a plain Map per server that never evicts a live entry.
//
// node-oidc-provider's default MemoryAdapter keeps everything in an LRU of 1,000 entries. A
// grant costs about three (the grant, its refresh token, the grant's token index) and every
// refresh adds more, so beyond ~330 accounts that LRU silently forgets live grants: a
// refresh then fails with invalid_grant as if the client had done something wrong. Scale
// tests need a server that forgets only what has expired, so this adapter honours
// `expiresIn` and nothing else. Expired entries are dropped when read, and swept in bulk
// every SWEEP_EVERY writes so a long run does not grow without bound.
//
// The interface is the one node-oidc-provider documents for adapters (upsert, find,
// findByUserCode, findByUid, consume, destroy, revokeByGrantId), with the same semantics as
// its MemoryAdapter, minus the eviction.

/** Writes between two sweeps of expired entries (a sweep walks the whole map). */
const SWEEP_EVERY = 10_000;

/** key -> { value, expiresAt (ms since epoch, or Infinity) }, shared by every model. */
const entries = new Map();
let writesSinceSweep = 0;

function isLive(entry) {
  return entry.expiresAt > Date.now();
}

function get(key) {
  const entry = entries.get(key);
  if (!entry) return undefined;
  if (!isLive(entry)) {
    entries.delete(key);
    return undefined;
  }
  return entry.value;
}

function set(key, value, expiresAt) {
  entries.set(key, { value, expiresAt });
  writesSinceSweep += 1;
  if (writesSinceSweep >= SWEEP_EVERY) {
    writesSinceSweep = 0;
    for (const [k, entry] of entries) if (!isLive(entry)) entries.delete(k);
  }
}

/** When an entry stored now with `expiresIn` seconds to live expires. */
function expiryFor(expiresIn) {
  return typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
}

const grantKey = (grantId) => `grant:${grantId}`;
const uidKey = (uid) => `sessionUid:${uid}`;
const userCodeKey = (userCode) => `userCode:${userCode}`;

/** Models whose tokens belong to a grant (revokeByGrantId removes them). */
const GRANTABLE = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode',
]);

/** The set of keys issued under `grantId`, created on first use; it lives as long as the grant. */
function grantMembers(grantId) {
  let members = get(grantKey(grantId));
  if (!members) {
    members = new Set();
    set(grantKey(grantId), members, Infinity);
  }
  return members;
}

export default class NeverEvictingAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = expiryFor(expiresIn);
    if (this.model === 'Session') set(uidKey(payload.uid), id, expiresAt);
    if (payload.userCode) set(userCodeKey(payload.userCode), id, expiresAt);
    if (GRANTABLE.has(this.model) && payload.grantId) grantMembers(payload.grantId).add(key);
    set(key, payload, expiresAt);
  }

  async find(id) {
    return get(this.key(id));
  }

  async findByUserCode(userCode) {
    const id = get(userCodeKey(userCode));
    return id === undefined ? undefined : this.find(id);
  }

  async findByUid(uid) {
    const id = get(uidKey(uid));
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    const key = this.key(id);
    const payload = get(key);
    entries.delete(key);
    if (payload?.grantId) get(grantKey(payload.grantId))?.delete(key);
  }

  async revokeByGrantId(grantId) {
    const members = get(grantKey(grantId));
    if (!members) return;
    for (const key of members) entries.delete(key);
    entries.delete(grantKey(grantId));
  }
}

