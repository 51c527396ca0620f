//! The manager's slots, with change tracking: every way to change a slot (`get_mut`,
//! `insert`, `remove`, `values_mut`) records its name, so the work after an event (the
//! deadline index, the transition log, alerts) looks at what changed, not at every slot.
//! Reading goes through `Deref` to the map; there is no `DerefMut`, so a change that does
//! not go through these methods does not compile. Pure bookkeeping: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

use super::slot::Slot;

/// The slots by name, and the names changed since [`SlotTable::take_touched`].
#[derive(Default)]
pub struct SlotTable {
    slots: BTreeMap<String, Slot>,
    touched: BTreeSet<String>,
}

impl SlotTable {
    /// A table over `slots`, every one of them counted as changed (nothing has seen them).
    pub fn new(slots: BTreeMap<String, Slot>) -> Self {
        let touched = slots.keys().cloned().collect();
        SlotTable { slots, touched }
    }

    /// The slot named `name`, for changing; its name is recorded.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Slot> {
        let slot = self.slots.get_mut(name)?;
        if !self.touched.contains(name) {
            self.touched.insert(name.to_owned());
        }
        Some(slot)
    }

    /// Adds or replaces a slot; its name is recorded.
    pub fn insert(&mut self, name: String, slot: Slot) -> Option<Slot> {
        self.touched.insert(name.clone());
        self.slots.insert(name, slot)
    }

    /// Removes a slot; its name is recorded (the observers forget it).
    pub fn remove(&mut self, name: &str) -> Option<Slot> {
        let slot = self.slots.remove(name)?;
        self.touched.insert(name.to_owned());
        Some(slot)
    }

    /// Every slot, for changing (a clock step, a stop): every name is recorded.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        self.touched.extend(self.slots.keys().cloned());
        self.slots.values_mut()
    }

    /// The names changed (added, changed or removed) since the last call.
    pub fn take_touched(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.touched)
    }
}

impl Deref for SlotTable {
    type Target = BTreeMap<String, Slot>;

    fn deref(&self) -> &Self::Target {
        &self.slots
    }
}
