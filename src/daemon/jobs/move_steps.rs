//! What is left of a `sessctl use` move, decided from what the stores hold
//! (`super::claude_code_move` reads them under Claude Code's locks): pure, so every case of
//! an interrupted move is checked here.

use crate::secret::Secret;

/// What is left to do, as the stores say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Move the store's login out, then the incoming one in.
    MoveOut,
    /// The store holds no login: move the incoming one in.
    MoveIn,
    /// The store holds the incoming login already: only its old item is left to delete.
    Finish,
    /// The store holds a login sessctl does not know.
    Stranger,
    /// The incoming slot has no item to move.
    NoIncoming,
    /// A resumed move whose stores hold a login rotated since that is neither copy sessctl
    /// has: whose it is cannot be told from the tokens. The provider's userinfo is asked
    /// (`JobContext::whose` in `super::claude_code_move`); without an answer nothing is written or presented.
    Undecided,
}

/// What is left to do, from the refresh tokens in Claude Code's store (`store`), in the
/// incoming slot's item (`incoming`) and in an earlier run's copy of the outgoing login
/// (`copy`).
pub(super) fn decide(
    store: Option<&Secret>,
    incoming: Option<&Secret>,
    copy: Option<&Secret>,
    has_outgoing: bool,
    resumed: bool,
) -> Step {
    match (incoming, store) {
        // The item goes only after the store took the login: an earlier run got that far.
        (None, _) if resumed => Step::Finish,
        (None, _) => Step::NoIncoming,
        (Some(ours), Some(theirs)) if ours == theirs => Step::Finish,
        (Some(_), None) => Step::MoveIn,
        (Some(_), Some(theirs)) => {
            if !has_outgoing {
                return if resumed {
                    Step::Undecided
                } else {
                    Step::Stranger
                };
            }
            match copy {
                // The store was rotated after an earlier run copied the outgoing login:
                // rotated that login, or the incoming one the run had written already.
                Some(copied) if copied != theirs && resumed => Step::Undecided,
                _ => Step::MoveOut,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Step, decide};
    use crate::secret::Secret;

    #[test]
    fn the_stores_say_how_far_a_move_got() {
        let (a, b, b2) = (Secret::new("a"), Secret::new("b"), Secret::new("b2"));
        // A first run: the store holds the outgoing login, or none, or a stranger's.
        assert_eq!(decide(Some(&b), Some(&a), None, true, false), Step::MoveOut);
        assert_eq!(decide(None, Some(&a), None, true, false), Step::MoveIn);
        assert_eq!(
            decide(Some(&b), Some(&a), None, false, false),
            Step::Stranger
        );
        assert_eq!(decide(Some(&b), None, None, true, false), Step::NoIncoming);
        // Resumed: copied, and rotated by Claude Code since (its newest is copied again).
        assert_eq!(decide(Some(&b2), Some(&a), None, true, true), Step::MoveOut);
        assert_eq!(
            decide(Some(&b), Some(&a), Some(&b), true, true),
            Step::MoveOut
        );
        // Resumed after the store took the incoming login, or after its item went.
        assert_eq!(
            decide(Some(&a), Some(&a), Some(&b), true, true),
            Step::Finish
        );
        assert_eq!(decide(Some(&a), None, Some(&b), true, true), Step::Finish);
        // Rotated since a copy was made: whose login it is cannot be told.
        assert_eq!(
            decide(Some(&b2), Some(&a), Some(&b), true, true),
            Step::Undecided
        );
        assert_eq!(
            decide(Some(&b2), Some(&a), None, false, true),
            Step::Undecided
        );
    }
}
