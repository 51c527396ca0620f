#!/usr/bin/env bash
# Whole-process benchmarks of the sessctl CLI, measured with hyperfine.
#
#   scripts/bench.sh            # build release, run every benchmark but scale1000
#   RUNS=2000 scripts/bench.sh  # more runs (default 1000, after 50 warm-up runs)
#   scripts/bench.sh scale1000  # only the 1,000-slot scenario (bench_scale1000, ~15 min)
#   scripts/bench.sh statusline # only the floor and the statusline benchmarks
#
# statusline: a release `sessctl statusline` over generated caches of 10, 200 and 1,000 slots
# (with the quota.lines the daemon writes beside quota.json; at 1,000 also without it; at 10
# and 1,000 also with Claude Code's statusLine JSON on stdin, which needs a C compiler for
# the tiny stdin feeder), in a throw-away HOME (nothing of yours is read or written), each
# beside /bin/true in the same hyperfine run. Target (issue 13): at most 2x /bin/true at 10
# slots and 3x at 1,000, with and without stdin. Then `status --json` through a daemon it starts in the throw-away HOME
# (target: at most 2 ms). Last, the kill -9 window (see bench_kill9_window) and an idle
# daemon's wakeups per minute (bench_idle_wakeups), which need what scripts/test.sh installs.
#
# Needs bash, cargo and hyperfine (installed with apt-get when missing, as root or with
# sudo). Honours CARGO_TARGET_DIR.
set -euo pipefail

RUNS=${RUNS:-1000}
WARMUP=${WARMUP:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/sessctl
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sessctl-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

ensure_hyperfine() {
    command -v hyperfine >/dev/null && return
    echo "hyperfine not found; installing the Debian package" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get install -y hyperfine >&2 ||
        { "${sudo[@]}" apt-get update >&2 && "${sudo[@]}" apt-get install -y hyperfine >&2; }
}

build() {
    (cd "$ROOT" && cargo build --release --quiet)
}

# write_cache FILE N [lines]: a quota cache of N active slots, fresh, two windows each, in the
# format of src/cache.rs. Every 7th slot's own data is 11 hours old (so the stale path is
# exercised) and every 13th is inactive; slot003 is Claude Code-backed, its config dir $CC_DIR
# (the one the stdin scenarios' Claude Code session uses). With `lines`, also the
# statusline's quota.lines beside it, as the daemon's writer makes it (format:
# src/cache_lines.rs).
write_cache() {
    local file=$1 n=$2 with_lines=${3:-} now old reset i state fetched now_s old_s reset_s
    now_s=$(date +%s) old_s=$(date -d '11 hours ago' +%s) reset_s=$(date -d '2 hours' +%s)
    now=$(date -u -d "@$now_s" +%Y-%m-%dT%H:%M:%SZ)
    old=$(date -u -d "@$old_s" +%Y-%m-%dT%H:%M:%SZ)
    reset=$(date -u -d "@$reset_s" +%Y-%m-%dT%H:%M:%SZ)
    mkdir -p "$(dirname "$file")"
    {
        printf '{\n  "updated_at": "%s",\n  "stale_after_secs": 900,\n  "slots": {\n' "$now"
        for ((i = 0; i < n; i++)); do
            state=active fetched=$now
            ((i % 7 == 6)) && fetched=$old
            ((i % 13 == 12)) && state=inactive
            printf '    "slot%03d": {"account": "user%d@example.com", "provider": "claude", ' "$i" "$i"
            printf '"state": "%s", "fetched_at": "%s", "windows": {' "$state" "$fetched"
            printf '"five_hour": {"utilization": %d.5, "resets_at": "%s"}, ' $((i % 100)) "$reset"
            printf '"seven_day": {"utilization": %d.25, "resets_at": "%s"}}, ' $((i * 7 % 100)) "$reset"
            ((i == 3)) && printf '"claude_code": "%s", ' "$CC_DIR"
            printf '"error": null}%s\n' "$([ $((i + 1)) -lt "$n" ] && echo ,)"
        done
        printf '  }\n}\n'
    } >"$file"
    [ "$with_lines" = lines ] || return 0
    local ns=000000000 mtime
    mtime=$(stat -c %.9Y "$file")
    {
        printf 'sessctl-quota-lines\t1\nsource\t%s\t%s\t%s\n' \
            "$(stat -c %d:%i "$file")" "$(stat -c %s "$file")" "${mtime/./}"
        printf 'cache\t%s.%s\t900\n' "$now_s" "$ns"
        for ((i = 0; i < n; i++)); do
            state=active fetched=$now_s
            ((i % 7 == 6)) && fetched=$old_s
            ((i % 13 == 12)) && state=inactive
            printf 'slot\tslot%03d\t=user%d@example.com\t=claude\t%s\t%s.%s\n' \
                "$i" "$i" "$state" "$fetched" "$ns"
            printf 'window\tfive_hour\t%d.5\t%s.%s\n' $((i % 100)) "$reset_s" "$ns"
            printf 'window\tseven_day\t%d.25\t%s.%s\n' $((i * 7 % 100)) "$reset_s" "$ns"
            ((i == 3)) && printf 'claude_code\t%s\n' "$CC_DIR"
        done
        printf 'end\t%d\n' "$n"
    } >"$(dirname "$file")/quota.lines"
}

# median_ms JSON [N]: the median of the Nth (default first) command of hyperfine's export,
# in milliseconds.
median_ms() {
    sed -n 's/.*"median": *\([0-9.e+-]*\).*/\1/p' "$1" | sed -n "${2:-1}p" |
        awk '{printf "%.3f", $1 * 1000}'
}

# bench_statusline SLOTS LABEL [ARGS...]: hyperfine over one cache size, beside /bin/true in
# the same run, printing both medians and their ratio. The cache has its quota.lines (as the
# daemon writes it) unless WITH_LINES=no. With STDIN=yes, Claude Code's statusLine JSON (with
# rate_limits) is on stdin and CLAUDE_CONFIG_DIR names slot003's dir: hyperfine 1.15 gives a
# command /dev/null as stdin, so both commands then run under `feed` (below), and what feed
# itself costs (`feed /bin/true` against `/bin/true`, in the same run) is taken off.
# Runs in a subshell so the throw-away HOME never leaks into the rest of the script.
bench_statusline() (
    local slots=$1 label=$2
    shift 2
    local home=$WORK/home-$slots-${WITH_LINES:-yes}
    CC_DIR=$home/.claude-slot003
    write_cache "$home/cache/sessctl/quota.json" "$slots" "$([ "${WITH_LINES:-yes}" = no ] || echo lines)"
    mkdir -p "$home/config/sessctl"
    printf 'stale_after: 15m\nstatusline:\n  separator: "  "\n' >"$home/config/sessctl/config.yaml"
    local cmd="$BIN statusline $*"
    export HOME=$home XDG_CACHE_HOME=$home/cache XDG_CONFIG_HOME=$home/config NO_COLOR=1
    local commands=(-n true /bin/true -n "$label" "$cmd")
    if [ "${STDIN:-no}" = yes ]; then
        export CLAUDE_CONFIG_DIR=$CC_DIR
        commands=(-n true /bin/true -n feed "$FEED $WORK/stdin.json /bin/true"
            -n "$label" "$FEED $WORK/stdin.json $cmd")
        echo "sample: $("$FEED" "$WORK/stdin.json" "$BIN" statusline "$@" | cut -c1-100)"
    else
        echo "sample: $(sh -c "$cmd" </dev/null | cut -c1-100)"
    fi
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" \
        --export-json "$WORK/$label.json" "${commands[@]}" >&2
    local n=$((${#commands[@]} / 3)) true_ms feed_ms=0 ms note=""
    true_ms=$(median_ms "$WORK/$label.json" 1)
    if [ "$n" -eq 3 ]; then
        feed_ms=$(awk -v f="$(median_ms "$WORK/$label.json" 2)" -v t="$true_ms" \
            'BEGIN { printf "%.3f", f - t }')
        note=" (feed's own $feed_ms ms taken off)"
    fi
    ms=$(awk -v m="$(median_ms "$WORK/$label.json" "$n")" -v f="$feed_ms" \
        'BEGIN { printf "%.3f", m - f }')
    printf '%-44s median %s ms, /bin/true %s ms: %sx%s\n' "$label" "$ms" "$true_ms" \
        "$(awk -v m="$ms" -v t="$true_ms" 'BEGIN { printf "%.2f", m / t }')" "$note"
)

# build_feed: $WORK/feed FILE PROG ARGS... runs PROG with FILE as its stdin (an exec, no
# shell), so hyperfine -N can give a command stdin. Static, so it costs one small exec.
build_feed() {
    FEED=$WORK/feed
    cat >"$WORK/feed.c" <<'EOF'
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 127;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0 || dup2(fd, 0) < 0) return 127;
    close(fd);
    execv(argv[2], argv + 2);
    return 127;
}
EOF
    cc -O2 -static -o "$FEED" "$WORK/feed.c" 2>/dev/null || cc -O2 -o "$FEED" "$WORK/feed.c"
    # Claude Code's statusLine JSON (2.1.332's fields), rate limits included.
    printf '%s' '{"session_id":"abc","transcript_path":"/tmp/x.jsonl","cwd":"/work",' \
        '"model":{"id":"claude-opus-4-1","display_name":"Opus"},"workspace":{"current_dir":' \
        '"/work","project_dir":"/work","added_dirs":[]},"version":"2.1.332","output_style":' \
        '{"name":"default"},"cost":{"total_cost_usd":0.12,"total_duration_ms":45000,' \
        '"total_api_duration_ms":2300,"total_lines_added":156,"total_lines_removed":23},' \
        '"context_window":{"total_input_tokens":15234,"total_output_tokens":4521,' \
        '"context_window_size":200000,"current_usage":{"input_tokens":8500,"output_tokens":1200,' \
        '"cache_creation_input_tokens":5000,"cache_read_input_tokens":2000}},' \
        '"exceeds_200k_tokens":false,"rate_limits":{"five_hour":{"used_percentage":23.5,' \
        '"resets_at":4102444800},"seven_day":{"used_percentage":41.2,"resets_at":4102444800}}}' \
        >"$WORK/stdin.json"
}

# The floor no statusline can beat on this machine: exec of /bin/true, and of sessctl doing
# nothing but parse its command line.
bench_floor() {
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" \
        --export-json "$WORK/floor.json" -n true -n "sessctl --version" \
        /bin/true "$BIN --version" >&2
    printf '%-34s median %s ms\n' "floor: /bin/true" "$(median_ms "$WORK/floor.json" 1)"
    printf '%-34s median %s ms\n' "floor: sessctl --version" "$(median_ms "$WORK/floor.json" 2)"
}

# bench_status_json_roundtrip: `sessctl status --json` against a running daemon holding
# 10 slots (file credential store, so no keychain is needed), whole process: connect, one
# request, one reply, print. Exit 1 is expected (the slots' quota is stale: no provider),
# so hyperfine ignores exit codes.
bench_status_json_roundtrip() (
    local home=$WORK/home-daemon
    mkdir -p "$home/config/sessctl" "$home/state/sessctl" "$home/runtime"
    chmod 700 "$home/runtime"
    printf 'credential_store: file\n' >"$home/config/sessctl/config.yaml"
    write_state "$home/state/sessctl/state.json" 10
    export HOME=$home XDG_CONFIG_HOME=$home/config XDG_STATE_HOME=$home/state \
        XDG_CACHE_HOME=$home/cache XDG_RUNTIME_DIR=$home/runtime
    "$BIN" daemon 2>"$WORK/daemon.log" &
    local pid=$!
    local tries=0
    until "$BIN" ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || { cat "$WORK/daemon.log" >&2; kill "$pid"; exit 1; }
        sleep 0.05
    done
    hyperfine -N -i --style basic --warmup "$WARMUP" --runs "$RUNS" \
        --export-json "$WORK/status.json" -n "status --json" "$BIN status --json" >&2
    printf '%-34s median %s ms\n' "status --json round trip, 10 slots" "$(median_ms "$WORK/status.json")"
    "$BIN" shutdown >/dev/null
    wait "$pid"
)

# bench_kill9_window: the window a `kill -9` can still cost a grant in, reply arrival to the
# write-ahead journal's fsync, p50/p99 over ROUNDS x 4 refreshes through the real test OAuth
# server and gnome-keyring (what scripts/test.sh installs), with the same run's keychain write
# (the window before the journal) and token request as anchors, and their ratio. Debug build:
# the figures are fsync, D-Bus and loopback time, not our code's.
bench_kill9_window() {
    (cd "$ROOT" && ROUNDS=${ROUNDS:-50} cargo test --quiet --test integration -- \
        --ignored --nocapture --exact journal::measure_the_kill_9_window 2>&1) |
        grep -E '^(kill -9 window|anchor|ratio)'
}

# bench_idle_wakeups: the release daemon idle (target: at most 2 wakeups a minute, RSS at
# most 7 MB): its voluntary wakeups per minute (all threads, from /proc/PID/task/*/status)
# over IDLE_SECS (default 60), with 10 slots in the real keychain, their tokens fresh and
# usage fetched, after start-up settled; per thread, then the total; then its VmRSS,
# RssAnon, RssFile, Pss and binary size, and its resident memory by mapping (smaps). The
# anchor is pizauth's, run here when installed (`pizauth server`, no accounts: the floor of
# its idle RSS), else the figure issue 13 measured. Needs what scripts/test.sh installs.
bench_idle_wakeups() {
    (cd "$ROOT" && IDLE_SESSCTL=$BIN IDLE_SECS=${IDLE_SECS:-60} cargo test --quiet --test integration -- \
        --ignored --nocapture --exact idle::measure_idle_wakeups 2>&1) |
        grep -E '^idle '
    bench_pizauth_rss
}

# bench_pizauth_rss: the anchor for the idle RSS above.
bench_pizauth_rss() {
    if ! command -v pizauth >/dev/null; then
        echo "idle anchor: pizauth not installed; issue 13 measured its idle VmRSS at 6.4 MB"
        return
    fi
    local home=$WORK/pizauth pid rss
    mkdir -p "$home/runtime"
    chmod 700 "$home/runtime"
    : >"$home/pizauth.conf"
    HOME=$home XDG_RUNTIME_DIR=$home/runtime pizauth server -c "$home/pizauth.conf" -d &
    pid=$!
    sleep 5
    rss=$(sed -n 's/^VmRSS:\s*//p' "/proc/$pid/status" 2>/dev/null || true)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "idle anchor: pizauth server (no accounts) VmRSS ${rss:-unknown (it exited; an empty config may not suit this version)}"
}

# write_state FILE N: a state file of N slots (their credentials are missing, so the daemon
# marks them inactive at start; status still lists all of them).
write_state() {
    local file=$1 n=$2 now i
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    {
        printf '{"format": 1, "revision": 1, "next_generation": %d, "slots": {\n' $((n + 1))
        for ((i = 0; i < n; i++)); do
            printf '"slot%03d": {"provider": "claude", "account": "user%d@example.com", ' "$i" "$i"
            printf '"state": "active", "reason": null, "generation": %d, "created_at": "%s", ' $((i + 1)) "$now"
            printf '"last_refresh_at": null, "last_refresh_error": null, "refreshes": 0}%s\n' \
                "$([ $((i + 1)) -lt "$n" ] && echo ,)"
        done
        printf '}}\n'
    } >"$file"
}

# bench_scale1000: a daemon with SLOTS (default 1000) slots in the real keychain against the
# real test server (release build, what scripts/test.sh installs): login latency (first vs
# last hundred), a steady state over STEADY_SECS (wakeups, CPU share, RSS, usage fetches),
# `status --json` and statusline against /bin/true in the same run, then a restart with every
# token expired (time, token requests in flight at most, reply to durable p50/p99). About
# 10-15 minutes on 2 cores; not part of the default run, never run by CI.
bench_scale1000() {
    (cd "$ROOT" && SESSCTL_BENCH_BIN=$BIN SLOTS=${SLOTS:-1000} STEADY_SECS=${STEADY_SECS:-60} \
        cargo test --quiet --test integration -- --ignored --nocapture --exact \
        scale_bench::measure_a_thousand_slots 2>&1) | grep -E '^scale '
}

main() {
    ensure_hyperfine
    build
    echo "machine: $(nproc) cores, $(uname -sr), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo 2>/dev/null | head -1)"
    if [ "${1:-}" = scale1000 ]; then
        bench_scale1000
        return
    fi
    echo "hyperfine: $(hyperfine --version), $WARMUP warm-up + $RUNS runs each"
    bench_floor
    if [ "${1:-}" = statusline ]; then
        bench_statuslines
        return
    fi
    bench_statuslines
    bench_status_json_roundtrip
    bench_kill9_window
    bench_idle_wakeups
}

bench_statuslines() {
    if command -v cc >/dev/null; then
        build_feed
    else
        echo "no C compiler: the Claude Code stdin scenarios are skipped" >&2
    fi
    bench_statusline 10 "statusline, 10 slots"
    bench_statusline 200 "statusline, 200 slots"
    bench_statusline 200 "statusline, 200 slots, reset times" \
        --format "'{name} {5h} {reset:5h} {reset_in:7d} {stale}'"
    bench_statusline 1000 "statusline, 1000 slots"
    WITH_LINES=no bench_statusline 1000 "statusline, 1000 slots, JSON only"
    [ -n "${FEED:-}" ] || return 0
    STDIN=yes bench_statusline 10 "statusline, 10 slots, Claude Code stdin"
    STDIN=yes bench_statusline 1000 "statusline, 1000 slots, Claude Code stdin"
}

main "$@"
