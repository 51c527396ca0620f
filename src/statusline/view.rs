//! What rendering needs of one slot ([`SlotView`]), so a line renders the same from a
//! [`QuotaCache`](crate::cache::QuotaCache) and straight from the text of `quota.lines`
//! ([`super::lines`]); and [`Current`], the slot Claude Code's figures were attributed to.

use chrono::{DateTime, Utc};

use crate::cache::{SlotQuota, Window};
use crate::state::SlotState;

/// What rendering needs of one slot, so a line renders the same from a [`QuotaCache`] and
/// straight from the text of `quota.lines` ([`lines`]), with no map built per slot.
pub trait SlotView {
    fn state(&self) -> SlotState;
    fn account(&self) -> Option<&str>;
    fn fetched_at(&self) -> Option<DateTime<Utc>>;
    fn window(&self, name: &str) -> Option<&Window>;
    /// Whether this is the slot Claude Code's figures were attributed to.
    fn current(&self) -> bool {
        false
    }
}

/// A slot shown as the one Claude Code's figures were attributed to.
pub struct Current<'a, S>(pub &'a S);

impl<S: SlotView> SlotView for Current<'_, S> {
    fn state(&self) -> SlotState {
        self.0.state()
    }
    fn account(&self) -> Option<&str> {
        self.0.account()
    }
    fn fetched_at(&self) -> Option<DateTime<Utc>> {
        self.0.fetched_at()
    }
    fn window(&self, name: &str) -> Option<&Window> {
        self.0.window(name)
    }
    fn current(&self) -> bool {
        true
    }
}

impl SlotView for SlotQuota {
    fn state(&self) -> SlotState {
        self.state
    }
    fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }
    fn fetched_at(&self) -> Option<DateTime<Utc>> {
        self.fetched_at
    }
    fn window(&self, name: &str) -> Option<&Window> {
        self.windows.get(name)
    }
}
