//! Tests of the start-up reconciliation between the state file and the store's inventory.

use std::collections::BTreeMap;

use super::*;
use crate::store::ItemSummary;

fn now() -> DateTime<Utc> {
    "2026-01-02T03:04:05Z".parse().unwrap()
}

fn record(generation: u64) -> SlotRecord {
    adopted_record("test", Some("a@example.com"), generation, now())
}

fn item(generation: u64, provider: Option<&str>) -> Result<ItemSummary, String> {
    Ok(ItemSummary {
        generation,
        version: 1,
        label: ItemLabel {
            provider: provider.map(str::to_owned),
            account: Some("a@example.com".to_owned()),
        },
    })
}

fn state(slots: &[(&str, u64)], next_generation: u64) -> StateFile {
    StateFile {
        next_generation,
        slots: slots
            .iter()
            .map(|(name, generation)| ((*name).to_owned(), record(*generation)))
            .collect(),
        ..StateFile::default()
    }
}

fn inventory(
    items: Vec<(&str, Result<ItemSummary, String>)>,
    logged_out: &[(&str, u64)],
) -> Inventory {
    Inventory {
        items: items
            .into_iter()
            .map(|(name, item)| (name.to_owned(), item))
            .collect(),
        logged_out: logged_out
            .iter()
            .map(|(name, generation)| ((*name).to_owned(), *generation))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn an_item_with_no_slot_is_adopted_and_generations_move_above_it() {
    let mut state = state(&[], 1);
    let found = inventory(vec![("work", item(7, Some("test")))], &[]);
    let out = reconcile(&mut state, &found, now());
    assert_eq!(out.adopted, ["work"]);
    let work = &state.slots["work"];
    assert_eq!((work.provider.as_str(), work.generation), ("test", 7));
    assert_eq!(
        work.account_key.as_ref().unwrap().email.as_deref(),
        Some("a@example.com")
    );
    assert_eq!(state.next_generation, 8);
    assert!(out.changed());
}

#[test]
fn a_logged_out_slot_of_an_old_state_file_is_dropped() {
    let mut state = state(&[("old", 2), ("work", 1)], 3);
    let found = inventory(vec![("work", item(1, Some("test")))], &[("old", 2)]);
    let out = reconcile(&mut state, &found, now());
    assert_eq!(out.dropped, ["old"]);
    assert_eq!(state.slots.keys().collect::<Vec<_>>(), ["work"]);
}

#[test]
fn a_slot_logged_in_again_after_its_logout_stays_with_the_item_label() {
    let mut state = state(&[("work", 2)], 3);
    let found = inventory(vec![("work", item(5, Some("other")))], &[("work", 2)]);
    let out = reconcile(&mut state, &found, now());
    assert!(out.dropped.is_empty());
    assert_eq!(state.slots["work"].provider, "other");
    assert_eq!(state.next_generation, 6);
}

#[test]
fn a_slot_whose_item_is_gone_stays_for_its_load_to_report() {
    let mut state = state(&[("work", 1)], 2);
    let out = reconcile(&mut state, &Inventory::default(), now());
    assert_eq!(out, Reconciled::default());
    assert!(state.slots.contains_key("work"));
}

#[test]
fn unlabelled_or_unreadable_items_are_unplaced_with_the_fix() {
    let mut state = state(&[], 1);
    let found = inventory(
        vec![
            ("legacy", item(3, None)),
            ("broken", Err("invalid JSON at line 1 column 2".to_owned())),
        ],
        &[],
    );
    let out = reconcile(&mut state, &found, now());
    assert!(state.slots.is_empty());
    let names: Vec<_> = out.unplaced.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["broken", "legacy"]);
    assert!(out.unplaced[1].fix.contains("sessctl login legacy"));
    assert_eq!(state.next_generation, 4);
}

#[test]
fn a_leftover_item_of_a_logged_out_login_is_not_adopted() {
    let mut state = state(&[], 1);
    let found = inventory(vec![("old", item(2, Some("test")))], &[("old", 2)]);
    let out = reconcile(&mut state, &found, now());
    assert!(out.adopted.is_empty() && state.slots.is_empty());
    assert_eq!(state.next_generation, 3);
}
