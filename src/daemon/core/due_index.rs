//! The deadline index: each slot's next refresh-side deadline (load retry, write retry,
//! scheduled refresh; only while the slot runs no job) and its next usage fetch, ordered by
//! (deadline, slot), so the timer's "what is due" and "when next" cost O(due · log slots)
//! instead of a walk over every slot. The manager re-indexes exactly the slots an event
//! changed (`crate::daemon::core::table`) before anything reads the index. Pure bookkeeping.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

/// One slot's indexed deadlines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotDeadlines {
    /// When its own work (load, write retry, refresh) is next due, if it is idle.
    pub work: Option<DateTime<Utc>>,
    /// When its next usage fetch is due.
    pub usage: Option<DateTime<Utc>>,
}

/// Both orders, and each slot's current keys (to remove them when they change).
#[derive(Debug, Default)]
pub struct DueIndex {
    keys: BTreeMap<String, SlotDeadlines>,
    work: BTreeSet<(DateTime<Utc>, String)>,
    usage: BTreeSet<(DateTime<Utc>, String)>,
}

impl DueIndex {
    /// Sets `name`'s deadlines (`None`: the slot is gone).
    pub fn set(&mut self, name: &str, deadlines: Option<SlotDeadlines>) {
        let old = match deadlines {
            Some(new) => self.keys.insert(name.to_owned(), new),
            None => self.keys.remove(name),
        };
        let old = old.unwrap_or_default();
        let new = deadlines.unwrap_or_default();
        replace(&mut self.work, name, old.work, new.work);
        replace(&mut self.usage, name, old.usage, new.usage);
    }

    /// The slots whose work is due at `now`, soonest deadline first.
    pub fn work_due(&self, now: DateTime<Utc>) -> Vec<String> {
        due(&self.work, now)
    }

    /// The slots whose usage fetch is due at `now`, soonest deadline first.
    pub fn usage_due(&self, now: DateTime<Utc>) -> Vec<String> {
        due(&self.usage, now)
    }

    /// The earliest deadline of any slot.
    #[cfg(test)]
    pub fn earliest(&self) -> Option<DateTime<Utc>> {
        self.earliest_work()
            .into_iter()
            .chain(self.earliest_usage())
            .min()
    }

    /// The earliest deadline of any slot's own work.
    #[cfg(test)]
    pub fn earliest_work(&self) -> Option<DateTime<Utc>> {
        self.work.first().map(|(at, _)| *at)
    }

    /// The slots' own work deadlines, soonest first.
    pub fn work_in_order(&self) -> impl Iterator<Item = (DateTime<Utc>, &str)> {
        self.work.iter().map(|(at, name)| (*at, name.as_str()))
    }

    /// The earliest usage fetch deadline.
    pub fn earliest_usage(&self) -> Option<DateTime<Utc>> {
        self.usage.first().map(|(at, _)| *at)
    }

    /// Every slot's indexed deadlines (for checks).
    #[cfg(test)]
    pub fn all(&self) -> &BTreeMap<String, SlotDeadlines> {
        &self.keys
    }
}

fn replace(
    set: &mut BTreeSet<(DateTime<Utc>, String)>,
    name: &str,
    old: Option<DateTime<Utc>>,
    new: Option<DateTime<Utc>>,
) {
    if old == new {
        return;
    }
    if let Some(at) = old {
        set.remove(&(at, name.to_owned()));
    }
    if let Some(at) = new {
        set.insert((at, name.to_owned()));
    }
}

fn due(set: &BTreeSet<(DateTime<Utc>, String)>, now: DateTime<Utc>) -> Vec<String> {
    set.iter()
        .take_while(|(at, _)| *at <= now)
        .map(|(_, name)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u32) -> DateTime<Utc> {
        format!("2026-11-23T10:00:{s:02}Z").parse().unwrap()
    }

    fn both(work: Option<u32>, usage: Option<u32>) -> SlotDeadlines {
        SlotDeadlines {
            work: work.map(at),
            usage: usage.map(at),
        }
    }

    #[test]
    fn a_changed_deadline_replaces_the_old_one_and_a_removed_slot_leaves_nothing() {
        let mut index = DueIndex::default();
        index.set("a", Some(both(Some(30), Some(10))));
        index.set("b", Some(both(Some(20), None)));
        assert_eq!(index.earliest(), Some(at(10)));
        index.set("a", Some(both(Some(5), None)));
        assert_eq!(index.earliest(), Some(at(5)));
        assert_eq!(index.work_due(at(25)), ["a", "b"]);
        assert!(index.usage_due(at(59)).is_empty());
        index.set("a", None);
        assert_eq!(index.work_due(at(25)), ["b"]);
        index.set("b", Some(both(None, None)));
        assert_eq!(index.earliest(), None);
        assert!(index.work.is_empty() && index.usage.is_empty());
    }

    #[test]
    fn slots_with_the_same_deadline_are_all_due() {
        let mut index = DueIndex::default();
        for name in ["c", "a", "b"] {
            index.set(name, Some(both(Some(1), Some(1))));
        }
        assert_eq!(index.work_due(at(1)), ["a", "b", "c"]);
        assert!(index.usage_due(at(0)).is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any sequence of changes leaves the index answering as a walk over the slots'
        /// current deadlines would.
        #[test]
        fn the_index_answers_as_a_walk_over_every_slot_would(
            changes in proptest::collection::vec(
                (0..6usize, proptest::option::of((proptest::option::of(0..60u32), proptest::option::of(0..60u32)))),
                0..80,
            ),
            now in 0..60u32,
        ) {
            let mut index = DueIndex::default();
            let mut model: BTreeMap<String, SlotDeadlines> = BTreeMap::new();
            for (slot, change) in changes {
                let name = format!("s{slot}");
                let deadlines = change.map(|(work, usage)| both(work, usage));
                index.set(&name, deadlines);
                match deadlines {
                    Some(d) => { model.insert(name, d); }
                    None => { model.remove(&name); }
                }
            }
            let walk = |pick: fn(&SlotDeadlines) -> Option<DateTime<Utc>>| {
                let mut due: Vec<(DateTime<Utc>, String)> = model
                    .iter()
                    .filter_map(|(name, d)| pick(d).filter(|at| *at <= self::at(now)).map(|at| (at, name.clone())))
                    .collect();
                due.sort();
                due.into_iter().map(|(_, name)| name).collect::<Vec<_>>()
            };
            proptest::prop_assert_eq!(index.work_due(at(now)), walk(|d| d.work));
            proptest::prop_assert_eq!(index.usage_due(at(now)), walk(|d| d.usage));
            let earliest = model.values().flat_map(|d| [d.work, d.usage]).flatten().min();
            proptest::prop_assert_eq!(index.earliest(), earliest);
            proptest::prop_assert_eq!(index.all(), &model);
        }
    }
}
