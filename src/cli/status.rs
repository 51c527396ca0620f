//! `sessctl status [--json]`: every slot's health as a table, or as the JSON documented in
//! the README. Exit 0 when every slot is active, 1 when some is degraded or inactive, 2 when
//! none is active, 3 when the daemon cannot be reached.

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::cli::exit;
use crate::client;
use crate::paths::Paths;
use crate::protocol::{Request, Response, SlotStatus, StatusReport};
use crate::state::SlotState;

pub fn run(paths: &Paths, json: bool) -> anyhow::Result<ExitCode> {
    let reply = client::call(&paths.socket, Request::Status)?;
    let Response::Status(report) = reply else {
        anyhow::bail!("unexpected reply to status: {reply:?}");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, Utc::now()));
    }
    Ok(ExitCode::from(exit_code(&report)))
}

/// 0 all active with fresh quota data, 1 some degraded, inactive or stale, 2 none active
/// (none configured or all inactive).
pub fn exit_code(report: &StatusReport) -> u8 {
    let states = || report.slots.iter().map(|s| s.state);
    let stale = report
        .slots
        .iter()
        .any(|s| s.quota.as_ref().is_some_and(|q| q.stale));
    if report.slots.is_empty() || states().all(|s| s == SlotState::Inactive) {
        exit::NONE_ACTIVE
    } else if states().all(|s| s == SlotState::Active) && !stale {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// The human table.
pub fn render(report: &StatusReport, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let store = format!("{:?}", report.credential_store).to_lowercase();
    out.push_str(&format!(
        "sessctl {} (pid {}), credentials in the {store}{}\n",
        report.version,
        report.pid,
        if store == "file" {
            " (plaintext file, opt-in)"
        } else {
            ""
        }
    ));
    if let Some(error) = &report.credential_store_error {
        out.push_str(&format!("credential store problem: {error}\n"));
    }
    if report.cache.stale && !report.slots.is_empty() {
        out.push_str(&format!(
            "quota cache {} is stale (updated {})\n",
            report.cache.path.display(),
            relative(report.cache.updated_at, now)
        ));
    }
    if report.slots.is_empty() {
        out.push_str(
            "no slots; add one with: sessctl login NAME --provider P --refresh-token-stdin\n",
        );
        return out;
    }
    let rows: Vec<[String; 7]> = report.slots.iter().map(|s| row(s, now)).collect();
    let header = [
        "SLOT",
        "ACCOUNT",
        "STATE",
        "QUOTA",
        "TOKEN EXPIRES",
        "NEXT REFRESH",
        "NOTE",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn row(slot: &SlotStatus, now: DateTime<Utc>) -> [String; 7] {
    let state = format!("{:?}", slot.state).to_lowercase();
    let note = match (slot.state, &slot.reason, &slot.last_refresh_error) {
        (SlotState::Inactive, reason, _) => format!(
            "{}: run sessctl login {} --provider {} --refresh-token-stdin",
            reason.as_deref().unwrap_or("inactive"),
            slot.name,
            slot.provider
        ),
        (_, _, Some(error)) => error.clone(),
        _ => format!("{} refreshes", slot.refreshes),
    };
    [
        slot.name.clone(),
        format!(
            "{} ({})",
            slot.account.as_deref().unwrap_or("?"),
            slot.provider
        ),
        state,
        quota(slot, now),
        relative(slot.access_token_expires_at, now),
        relative(slot.next_refresh_at, now),
        note,
    ]
}

/// "5h 16% 7d 42%", with the data's age when it is stale.
fn quota(slot: &SlotStatus, now: DateTime<Utc>) -> String {
    let Some(quota) = &slot.quota else {
        return "-".into();
    };
    let mut parts: Vec<String> = quota
        .windows
        .iter()
        .map(|(name, w)| format!("{} {:.0}%", crate::cache::window_label(name), w.utilization))
        .collect();
    if parts.is_empty() {
        parts.push("no data".into());
    }
    if quota.stale {
        parts.push(format!(
            "STALE (fetched {})",
            relative(quota.fetched_at, now)
        ));
    }
    parts.join(" ")
}

/// "in 5m", "3m ago", "-".
fn relative(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let secs = (at - now).num_seconds();
    let span = |s: i64| match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    };
    if secs >= 0 {
        format!("in {}", span(secs))
    } else {
        format!("{} ago", span(-secs))
    }
}
