//! Helpers every Claude Code test shares: Claude Code's store file in a config dir (read,
//! write, a fresh login written as `claude /login` leaves it), `sessctl adopt --claude-code`,
//! and the node programs under `tests/claude-code/` (the lock peer with the real
//! `proper-lockfile`, the stand-ins). Every config dir is in the test's temp HOME.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

use crate::flows::Running;

/// Now, as Claude Code writes `expiresAt` (ms since the epoch).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Claude Code's store file in config dir `dir` (Linux).
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join(".credentials.json")
}

/// Writes `doc` as the store of `dir`, mode 0600.
pub fn write_store(dir: &Path, doc: &Value) {
    let path = store_path(dir);
    fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Writes `doc` as the store of `dir` the way Claude Code does: a temp file (0600), renamed
/// over the store (a new inode).
pub fn replace_store(dir: &Path, doc: &Value) {
    fs::create_dir_all(dir).unwrap();
    let temp = dir.join(".credentials.json.tmp");
    fs::write(&temp, serde_json::to_vec(doc).unwrap()).unwrap();
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&temp, store_path(dir)).unwrap();
}

/// The store of `dir`.
pub fn read_store(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(store_path(dir)).unwrap()).unwrap()
}

/// The refresh token in the store of `dir`.
pub fn refresh_token_in(dir: &Path) -> String {
    read_store(dir)["claudeAiOauth"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The access token in the store of `dir`.
pub fn access_token_in(dir: &Path) -> String {
    read_store(dir)["claudeAiOauth"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Asserts two tokens are equal without printing either (tokens never go to test output).
pub fn assert_same_token(found: &str, expected: &str, what: &str) {
    assert!(found == expected, "{what} is not the expected one");
}

/// A fresh login of `account` (a new grant, redeemed once at the server as `claude /login`
/// would have): its `claudeAiOauth` object, and the grant's id.
pub fn fresh_login(t: &Running, account: &str) -> (Value, String) {
    let grant = t.server.grant(account, &format!("{account}@example.com"));
    let reply = t.server.refresh(&grant.refresh_token);
    let expires_in = reply.body["expires_in"].as_i64().unwrap();
    let login = json!({
        "accessToken": reply.field("access_token"),
        "refreshToken": reply.field("refresh_token"),
        "expiresAt": now_ms() + expires_in * 1000,
        "scopes": ["user:inference", "user:profile"],
    });
    (login, grant.grant_id)
}

/// `sessctl adopt SLOT --claude-code DIR --provider test`.
pub fn adopt(t: &Running, slot: &str, dir: &Path) -> Output {
    t.env.sessctl(&[
        "adopt",
        slot,
        "--claude-code",
        dir.to_str().unwrap(),
        "--provider",
        "test",
    ])
}

/// `tests/claude-code/NAME`, once its node modules are installed.
pub fn script(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/claude-code");
    assert!(
        dir.join("node_modules/proper-lockfile").is_dir(),
        "proper-lockfile is not installed: run scripts/test.sh (or `npm ci --prefix tests/claude-code`)"
    );
    dir.join(name)
}

/// `node tests/claude-code/SCRIPT ARGS…` with stdin and stdout piped, started.
pub fn spawn_node(script_name: &str, args: &[&str]) -> Child {
    Command::new("node")
        .arg(script(script_name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start node")
}

/// The next line `child` prints on stdout (blocks until it prints one).
pub fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

/// `node lock_peer.cjs MODE DIR ARGS…` once it says "held": Claude Code holding a lock
/// (`hold`: its refresh locks; `hold-write`: its storage-write lock; …), alive.
pub fn lock_peer(mode: &str, dir: &Path, args: &[&str]) -> Child {
    let mut all = vec![mode, dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut child = spawn_node("lock_peer.cjs", &all);
    assert_eq!(first_line(&mut child).trim(), "held");
    child
}

/// Tells a lock peer to release its lock, and waits for it to exit.
pub fn release(mut peer: Child) {
    writeln!(peer.stdin.as_mut().unwrap(), "release").unwrap();
    peer.wait().unwrap();
}
