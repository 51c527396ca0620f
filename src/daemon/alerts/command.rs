//! Running `alert_command` for one event: the program (no shell) in a process group of its
//! own, the event as one line of JSON on stdin, stdout and stderr captured (the first few
//! KiB) and logged briefly. It gets `alerts.command_timeout`; then the whole process group
//! is killed and the child reaped. Every failure is logged; nothing here returns an error
//! or panics, so a broken notifier can never stall or crash the daemon.

use std::fmt::Write as _;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::config::AlertCommand;

use super::event::AlertEvent;

/// Output kept from each of stdout and stderr; the rest is read and dropped (so the
/// program never blocks on a full pipe).
const OUTPUT_KEPT: usize = 4096;
/// Characters of output shown in a log line.
const OUTPUT_LOGGED: usize = 200;
/// How long to wait for a killed program to be reaped: SIGKILL is immediate unless the
/// process is stuck in the kernel, and then tokio's orphan reaper takes over.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The program could not be started.
    NotStarted(String),
    /// It exited (successfully or not) within the time limit.
    Exited {
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
    /// It was still running at the time limit and was killed.
    TimedOut,
}

/// Runs `command` with `event` on stdin and logs how it went.
pub async fn run_and_log(command: &AlertCommand, event: &AlertEvent, limit: Duration) {
    let program = command.program.as_str();
    let kind = event.event.as_str();
    match run(command, &event.json_line(), limit).await {
        RunOutcome::NotStarted(e) => {
            tracing::warn!(program, event = kind, "alert_command could not start: {e}");
        }
        RunOutcome::TimedOut => tracing::warn!(
            program,
            event = kind,
            "alert_command did not finish within {}s: killed",
            limit.as_secs_f64()
        ),
        RunOutcome::Exited {
            status,
            stdout,
            stderr,
        } => {
            let output = brief(&stdout, &stderr);
            if status.success() {
                tracing::info!(
                    program,
                    event = kind,
                    "alert_command delivered the alert{output}"
                );
            } else {
                tracing::warn!(
                    program,
                    event = kind,
                    "alert_command failed ({status}){output}"
                );
            }
        }
    }
}

/// Runs `command` with `input` on stdin, for at most `limit`.
pub async fn run(command: &AlertCommand, input: &str, limit: Duration) -> RunOutcome {
    let mut program = Command::new(&command.program);
    program
        .args(&command.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    program.process_group(0);
    let mut child = match program.spawn() {
        Ok(child) => child,
        Err(e) => return RunOutcome::NotStarted(e.to_string()),
    };
    // The child leads its own group: the group id is its pid.
    let mut group = GroupGuard(child.id());
    let outcome = match tokio::time::timeout(limit, talk(&mut child, input)).await {
        Ok(Ok((status, stdout, stderr))) => RunOutcome::Exited {
            status,
            stdout,
            stderr,
        },
        Ok(Err(e)) => RunOutcome::NotStarted(format!("cannot wait for it: {e}")),
        Err(_) => {
            group.kill();
            if tokio::time::timeout(REAP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                tracing::warn!("alert_command survived SIGKILL for 5s; leaving it to be reaped");
            }
            RunOutcome::TimedOut
        }
    };
    group.disarm();
    outcome
}

/// Feeds `input` to the child and collects its output and exit status.
async fn talk(child: &mut Child, input: &str) -> std::io::Result<(ExitStatus, String, String)> {
    let stdin = child.stdin.take();
    let write = async move {
        if let Some(mut stdin) = stdin {
            // A program that does not read its input (and exits) is not an error.
            let _ = stdin.write_all(input.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let ((), stdout, stderr, status) =
        tokio::join!(write, read_kept(stdout), read_kept(stderr), child.wait());
    Ok((status?, stdout, stderr))
}

/// Reads a pipe to its end, keeping the first [`OUTPUT_KEPT`] bytes as (lossy) text.
async fn read_kept(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let (mut kept, mut chunk) = (Vec::new(), [0u8; 1024]);
    while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
        let room = OUTPUT_KEPT.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// `; stdout: "..."; stderr: "..."` for whichever is not empty, shortened to one line.
fn brief(stdout: &str, stderr: &str) -> String {
    let mut text = String::new();
    for (name, output) in [("stdout", stdout), ("stderr", stderr)] {
        let output = output.trim();
        if output.is_empty() {
            continue;
        }
        let mut shown: String = output
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(OUTPUT_LOGGED)
            .collect();
        if output.chars().count() > OUTPUT_LOGGED {
            shown.push_str("...");
        }
        let _ = write!(text, "; {name}: {shown:?}");
    }
    text
}

/// Kills the child's process group when dropped armed: when the delivery task is cancelled
/// (the daemon stops) mid-run, or on the time limit. `kill_on_drop` alone would reach only
/// the child, not what it started.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    #[cfg(unix)]
    fn kill(&mut self) {
        if let Some(pid) = self.0.take().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) has no memory effects; a negative pid names the group the
            // child leads (it was started with process_group(0) and is not reaped yet).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }

    /// Without Unix process groups only `kill_on_drop` stops the child (the daemon does not
    /// run on Windows yet: this only keeps the module compiling there).
    #[cfg(not(unix))]
    fn kill(&mut self) {
        self.0 = None;
    }

    /// The child was reaped and its group need not be killed.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> AlertCommand {
        AlertCommand {
            program: "/bin/sh".to_owned(),
            args: vec!["-c".to_owned(), script.to_owned()],
        }
    }

    #[tokio::test]
    async fn the_program_reads_the_event_on_stdin_and_its_output_is_kept() {
        let outcome = run(
            &sh("cat; echo oops >&2; exit 3"),
            "{\"a\":1}\n",
            Duration::from_secs(30),
        )
        .await;
        let RunOutcome::Exited {
            status,
            stdout,
            stderr,
        } = outcome
        else {
            panic!("{outcome:?}");
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(stdout, "{\"a\":1}\n");
        assert_eq!(stderr, "oops\n");
        assert_eq!(
            brief(&stdout, &stderr),
            "; stdout: \"{\\\"a\\\":1}\"; stderr: \"oops\""
        );
    }

    #[tokio::test]
    async fn a_hanging_program_and_its_children_are_killed_at_the_limit() {
        let dir = crate::test_dirs::fresh("alert");
        let pid_file = dir.join("grandchild.pid");
        let script = format!("sleep 1000 & echo $! > {}; wait", pid_file.display());
        let outcome = run(&sh(&script), "", Duration::from_millis(500)).await;
        assert_eq!(outcome, RunOutcome::TimedOut);
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was in the killed group: it dies (a signal takes effect
        // asynchronously) and is then gone, or a zombie (state Z) until init reaps it.
        let dead = || {
            let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
            let stat = stat.unwrap_or_default();
            let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
            matches!(state, None | Some('Z'))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !dead() {
            assert!(
                std::time::Instant::now() < deadline,
                "{grandchild} survived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_missing_program_or_one_that_ignores_stdin_is_reported() {
        let missing = AlertCommand {
            program: "/nonexistent/sessctl-alert".to_owned(),
            args: vec![],
        };
        assert!(matches!(
            run(&missing, "{}\n", Duration::from_secs(5)).await,
            RunOutcome::NotStarted(_)
        ));
        let big = "x".repeat(1 << 20);
        let outcome = run(&sh("exit 0"), &big, Duration::from_secs(30)).await;
        assert!(
            matches!(outcome, RunOutcome::Exited { status, .. } if status.success()),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn output_beyond_the_kept_part_is_drained_and_dropped() {
        let outcome = run(
            &sh("head -c 100000 /dev/zero | tr '\\0' y"),
            "",
            Duration::from_secs(30),
        )
        .await;
        let RunOutcome::Exited { stdout, .. } = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(stdout.len(), OUTPUT_KEPT);
        assert!(brief(&stdout, "").ends_with("...\""));
    }
}
