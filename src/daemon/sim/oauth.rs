//! The model OAuth server of the simulator: refresh-token rotation with reuse detection,
//! as the real test server (`tests/oauth-server`) does in strict mode. Every grant is a
//! lineage of refresh tokens `rt.<grant>.<n>`; presenting the newest one rotates it to
//! `n + 1`, presenting an older one (a token presented twice) revokes the whole grant.
//! Faults are drawn from the simulator's seeded RNG: 5xx, 429 with `Retry-After`, a
//! connection reset, a proxy's HTML page, and odd 200 replies that did rotate the token
//! (no access token, an absurd or unreadable `expires_in`). Replies are wire replies run
//! through the real parser ([`crate::oauth::classify_reply`]), so the daemon sees exactly
//! the outcomes it would see in production.
//!
//! Decision: a fault that costs a rotation the client cannot learn of (the server rotates,
//! the reply is lost) is not modelled. No client can avoid presenting that token again;
//! the invariant "no token presented twice" is about what the daemon controls.

use chrono::{DateTime, Utc};

use crate::oauth::{Cause, TokenOutcome, Unreachable, classify_reply};
use crate::secret::Secret;

/// How a grant ended, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// A refresh token of it was presented twice.
    Reuse,
    /// The client revoked it (a logout, a replaced login).
    ByClient,
    /// A logout revoked it in a process that died before the logout was answered and
    /// saved: the next process still lists the slot, and learns of it by a refusal.
    InterruptedLogout,
}

/// One login's lineage of refresh tokens.
#[derive(Debug, Clone)]
pub struct Grant {
    pub account: usize,
    /// The position of the one refresh token that is valid now.
    pub current: u32,
    pub revoked: Option<Revoked>,
}

/// A refresh token's place: its grant and its position in the lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenId {
    pub grant: usize,
    pub pos: u32,
}

impl std::fmt::Display for TokenId {
    // Names the token by its place, which is all a message may say of it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refresh token #{} of grant {}", self.pos, self.grant)
    }
}

/// Something the server saw that the invariants judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sighting {
    /// An already rotated refresh token was presented again.
    Reused(TokenId),
    /// A token of a grant the client itself revoked was presented.
    AfterRevoke(TokenId),
}

/// Fault rates, each a probability per token request.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub server_error: f64,
    pub rate_limited: f64,
    pub reset: f64,
    pub proxy_page: f64,
    pub odd_success: f64,
}

impl Faults {
    /// The rates the simulator runs with: about one request in four fails somehow.
    pub const SIM: Faults = Faults {
        server_error: 0.06,
        rate_limited: 0.04,
        reset: 0.06,
        proxy_page: 0.03,
        odd_success: 0.08,
    };
    /// No faults at all.
    pub const NONE: Faults = Faults {
        server_error: 0.0,
        rate_limited: 0.0,
        reset: 0.0,
        proxy_page: 0.0,
        odd_success: 0.0,
    };
}

/// The model server. See the module docs.
pub struct ModelOAuth {
    pub grants: Vec<Grant>,
    pub faults: Faults,
    pub sightings: Vec<Sighting>,
    /// Token requests answered (faults included).
    pub requests: u64,
}

/// A token request's answer: the outcome the daemon sees and the refresh token the server
/// issued with it, if it rotated.
pub struct Answer {
    pub outcome: TokenOutcome,
    pub issued: Option<TokenId>,
}

impl ModelOAuth {
    pub fn new(faults: Faults) -> Self {
        ModelOAuth {
            grants: Vec::new(),
            faults,
            sightings: Vec::new(),
            requests: 0,
        }
    }

    /// A new grant for `account` (a login elsewhere): its first refresh token.
    pub fn issue(&mut self, account: usize) -> Secret {
        self.grants.push(Grant {
            account,
            current: 0,
            revoked: None,
        });
        token(TokenId {
            grant: self.grants.len() - 1,
            pos: 0,
        })
    }

    /// Answers a refresh-token grant for `refresh_token`.
    pub fn refresh(
        &mut self,
        refresh_token: &Secret,
        rng: &mut fastrand::Rng,
        now: DateTime<Utc>,
    ) -> Answer {
        self.requests += 1;
        if let Some(outcome) = self.fault_before_processing(rng, now) {
            return Answer {
                outcome,
                issued: None,
            };
        }
        let Some(id) = parse(refresh_token.expose()).filter(|id| id.grant < self.grants.len())
        else {
            return refused(now);
        };
        let grant = &mut self.grants[id.grant];
        match grant.revoked {
            Some(Revoked::ByClient) => self.sightings.push(Sighting::AfterRevoke(id)),
            None if id.pos < grant.current => {
                grant.revoked = Some(Revoked::Reuse);
                self.sightings.push(Sighting::Reused(id));
            }
            None if id.pos == grant.current => return self.rotate(id, rng, now),
            // Already revoked by reuse or an interrupted logout, or a token from the future.
            Some(Revoked::Reuse | Revoked::InterruptedLogout) | None => {}
        }
        refused(now)
    }

    /// The client revokes the grant a refresh token belongs to (RFC 7009: any token of it).
    pub fn revoke(&mut self, refresh_token: &Secret) {
        let grant = parse(refresh_token.expose()).and_then(|id| self.grants.get_mut(id.grant));
        if let Some(grant) = grant.filter(|g| g.revoked.is_none()) {
            grant.revoked = Some(Revoked::ByClient);
        }
    }

    /// The logout that revoked `refresh_token`'s grant died unanswered (see [`Revoked`]).
    pub fn logout_interrupted(&mut self, refresh_token: &Secret) {
        let grant = parse(refresh_token.expose()).and_then(|id| self.grants.get_mut(id.grant));
        if let Some(grant) = grant.filter(|g| g.revoked == Some(Revoked::ByClient)) {
            grant.revoked = Some(Revoked::InterruptedLogout);
        }
    }

    fn fault_before_processing(
        &self,
        rng: &mut fastrand::Rng,
        now: DateTime<Utc>,
    ) -> Option<TokenOutcome> {
        let f = self.faults;
        let roll = rng.f64();
        let mut edge = f.server_error;
        if roll < edge {
            return Some(classify_reply(503, None, b"busy", true, now));
        }
        edge += f.rate_limited;
        if roll < edge {
            let wait = rng.u32(1..120).to_string();
            return Some(classify_reply(429, Some(&wait), b"", true, now));
        }
        edge += f.reset;
        if roll < edge {
            return Some(TokenOutcome::Transient {
                error: "connection reset".to_owned(),
                cause: Cause::Unreachable {
                    host: "sim.invalid".to_owned(),
                    how: Unreachable::Reset,
                },
                retry_after: None,
            });
        }
        edge += f.proxy_page;
        if roll < edge {
            return Some(classify_reply(
                200,
                None,
                b"<html>sign in</html>",
                true,
                now,
            ));
        }
        None
    }

    fn rotate(&mut self, id: TokenId, rng: &mut fastrand::Rng, now: DateTime<Utc>) -> Answer {
        let account = self.grants[id.grant].account;
        let next = TokenId {
            grant: id.grant,
            pos: id.pos + 1,
        };
        self.grants[id.grant].current = next.pos;
        let rt = token(next);
        let access = format!("at.{}.{}", next.grant, next.pos);
        let account =
            format!(r#""account":{{"email_address":"a{account}@sim","uuid":"u{account}"}}"#);
        let lifetime = rng.u32(300..3600);
        let body = if rng.f64() < self.faults.odd_success {
            match rng.u8(0..3) {
                0 => format!(r#"{{"refresh_token":"{}",{account}}}"#, rt.expose()),
                1 => format!(
                    r#"{{"access_token":"{access}","refresh_token":"{}","expires_in":1e12,{account}}}"#,
                    rt.expose()
                ),
                _ => format!(
                    r#"{{"access_token":"{access}","refresh_token":"{}","expires_in":"soon",{account}}}"#,
                    rt.expose()
                ),
            }
        } else {
            format!(
                r#"{{"access_token":"{access}","refresh_token":"{}","expires_in":{lifetime},"token_type":"Bearer",{account}}}"#,
                rt.expose()
            )
        };
        Answer {
            outcome: classify_reply(200, None, body.as_bytes(), true, now),
            issued: Some(next),
        }
    }
}

fn refused(now: DateTime<Utc>) -> Answer {
    Answer {
        outcome: classify_reply(400, None, br#"{"error":"invalid_grant"}"#, true, now),
        issued: None,
    }
}

/// The refresh token at `id`.
pub fn token(id: TokenId) -> Secret {
    Secret::new(format!("rt.{}.{}", id.grant, id.pos))
}

/// The place of a refresh token (`rt.<grant>.<n>`) or of an access token (`at.<grant>.<n>`,
/// issued with refresh token `n`).
pub fn parse(value: &str) -> Option<TokenId> {
    let rest = value
        .strip_prefix("rt.")
        .or_else(|| value.strip_prefix("at."))?;
    let (grant, pos) = rest.split_once('.')?;
    Some(TokenId {
        grant: grant.parse().ok()?,
        pos: pos.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::PermanentReason;

    fn now() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH
    }

    #[test]
    fn rotation_then_reuse_revokes_the_whole_grant() {
        let mut server = ModelOAuth::new(Faults::NONE);
        let mut rng = fastrand::Rng::with_seed(1);
        let first = server.issue(0);
        let answer = server.refresh(&first, &mut rng, now());
        let TokenOutcome::Refreshed(grant) = answer.outcome else {
            panic!("not refreshed");
        };
        let second = grant.refresh_token.unwrap();
        assert_eq!(parse(second.expose()), answer.issued);
        assert_eq!(grant.account_email.as_deref(), Some("a0@sim"));

        let again = server.refresh(&first, &mut rng, now());
        assert!(matches!(
            again.outcome,
            TokenOutcome::Permanent {
                reason: PermanentReason::SessionExpired,
                ..
            }
        ));
        assert_eq!(
            server.sightings,
            [Sighting::Reused(TokenId { grant: 0, pos: 0 })]
        );
        // The newest token died with its grant.
        let after = server.refresh(&second, &mut rng, now());
        assert!(matches!(after.outcome, TokenOutcome::Permanent { .. }));
    }

    #[test]
    fn a_revoked_grant_is_refused_and_its_use_is_seen() {
        let mut server = ModelOAuth::new(Faults::NONE);
        let mut rng = fastrand::Rng::with_seed(2);
        let first = server.issue(3);
        server.revoke(&first);
        let answer = server.refresh(&first, &mut rng, now());
        assert!(matches!(answer.outcome, TokenOutcome::Permanent { .. }));
        assert_eq!(
            server.sightings,
            [Sighting::AfterRevoke(TokenId { grant: 0, pos: 0 })]
        );
    }

    #[test]
    fn faults_are_transient_and_odd_successes_still_rotate() {
        let always = |f: fn(&mut Faults)| {
            let mut faults = Faults::NONE;
            f(&mut faults);
            faults
        };
        let mut rng = fastrand::Rng::with_seed(3);
        for faults in [
            always(|f| f.server_error = 1.0),
            always(|f| f.rate_limited = 1.0),
            always(|f| f.reset = 1.0),
            always(|f| f.proxy_page = 1.0),
        ] {
            let mut server = ModelOAuth::new(faults);
            let first = server.issue(0);
            let answer = server.refresh(&first, &mut rng, now());
            assert!(matches!(answer.outcome, TokenOutcome::Transient { .. }));
            assert_eq!(server.grants[0].current, 0, "a fault before processing");
        }
        let mut server = ModelOAuth::new(always(|f| f.odd_success = 1.0));
        for _ in 0..20 {
            let first = server.issue(0);
            let answer = server.refresh(&first, &mut rng, now());
            let TokenOutcome::Refreshed(grant) = answer.outcome else {
                panic!("an odd success is still a success");
            };
            assert_eq!(
                parse(grant.refresh_token.unwrap().expose()),
                answer.issued,
                "the rotated token is always readable"
            );
        }
    }
}
