//! `sessctl refresh [NAME | --all]`: joins or starts each slot's refresh and reports
//! every outcome once all have ended.

use super::super::waiters::{Waiter, refresh_batch};
use super::super::{Manager, Reply};
use super::unknown_slot;

impl Manager {
    /// `refresh NAME` / `refresh --all`: joins or starts each slot's refresh and reports
    /// every outcome once all have ended.
    pub(in crate::daemon) fn handle_refresh(&mut self, name: Option<String>, reply: Reply) {
        let names: Vec<String> = match name {
            Some(name) if self.slots.contains_key(&name) => vec![name],
            Some(name) => {
                let _ = reply.send(Err(unknown_slot(&name)));
                return;
            }
            None => self.slots.keys().cloned().collect(),
        };
        let parts = refresh_batch(reply, names.len());
        for (name, part) in names.into_iter().zip(parts) {
            let Some(slot) = self.slots.get_mut(&name) else {
                continue;
            };
            if let Some(refusal) = slot.refusal(&self.config) {
                part.fill(&slot.outcome(Err(refusal)));
            } else {
                slot.waiters.push(Waiter::refresh(part));
                self.start_next_job(&name, false);
            }
        }
    }
}
