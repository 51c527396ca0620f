//! The human `status` table: one compact row per slot (readable at 80 columns), with the
//! advice of [`super::advice`] indented under every slot that is not healthy.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::advice::Advisor;
use crate::cli::when::relative;
use crate::config::CredentialStoreKind;
use crate::protocol::{SlotStatus, StatusReport};

/// Longest account shown in full; longer ones are cut with an ellipsis to keep rows short.
const ACCOUNT_WIDTH: usize = 24;

const HEADER: [&str; 6] = ["SLOT", "STATE", "ACCOUNT", "EXPIRES", "REFRESHED", "QUOTA"];

/// The whole table, header lines included.
pub fn render(report: &StatusReport, advisor: &Advisor) -> String {
    let mut out = String::new();
    let store = match report.credential_store {
        CredentialStoreKind::Keychain => "the keychain",
        CredentialStoreKind::File => "a plaintext file (credential_store: file, opt-in)",
    };
    let _ = writeln!(
        out,
        "sessctl {} (pid {}), credentials in {store}",
        report.version, report.pid
    );
    for line in advisor.report(report) {
        out.push_str(&line);
        out.push('\n');
    }
    if report.slots.is_empty() {
        out.push_str("no slots; add one with: sessctl login NAME --provider PROVIDER\n");
        return out;
    }
    let rows: Vec<[String; 6]> = report.slots.iter().map(|s| row(s, advisor.now)).collect();
    let mut widths = HEADER.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    push_row(&mut out, &HEADER.map(String::from), &widths);
    for (slot, r) in report.slots.iter().zip(&rows) {
        push_row(&mut out, r, &widths);
        for line in advisor.slot(slot, report.credential_store) {
            out.push_str("  ");
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn push_row(out: &mut String, cells: &[String; 6], widths: &[usize; 6]) {
    let line: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, w)| format!("{cell:<w$}"))
        .collect();
    out.push_str(line.join("  ").trim_end());
    out.push('\n');
}

fn row(slot: &SlotStatus, now: DateTime<Utc>) -> [String; 6] {
    [
        slot.name.clone(),
        format!("{:?}", slot.state).to_lowercase(),
        shorten(slot.account.as_deref().unwrap_or("?"), ACCOUNT_WIDTH),
        relative(slot.access_token_expires_at, now),
        match slot.last_refresh_at {
            Some(at) => relative(Some(at), now),
            None => "never".to_owned(),
        },
        quota(slot),
    ]
}

/// "5h 16% 7d 42%", "STALE" appended (hard to miss) when the slot's data is old; "-" without a usage
/// endpoint.
pub(super) fn quota(slot: &SlotStatus) -> String {
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
        parts.push("STALE".into());
    }
    parts.join(" ")
}

/// `text` cut to `max` characters, the last one an ellipsis when cut.
pub(super) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
