//! The simulated jobs: each [`JobOrder`] the core queues becomes a [`Job`] that the
//! scheduler advances one effect at a time (a token request, the journal append with it,
//! a store call, the report), in any order against other jobs, so a crash can fall
//! between any two effects. The effects hit the models; what a job reports is the real
//! [`JobResult`] the real job would report, built as `crate::daemon::jobs` builds it.

use chrono::{DateTime, Utc};

use crate::account::Identity;
use crate::oauth::{self, TokenGrant, TokenOutcome};
use crate::protocol::{ErrorCode, ErrorReply, LogoutReply};
use crate::secret::Secret;
use crate::store::{StoreError, Tokens, WriteCondition};

use super::invariants::{Checker, durable_of};
use super::oauth::{ModelOAuth, parse};
use super::store::ModelStore;
use crate::daemon::core::Reply;
use crate::daemon::core::drain::{DrainGate, InFlight};
use crate::daemon::core::reports::{
    FirstOutcome, JobResult, LoginResult, LoginSuccess, RefreshOutcome, RevocationReport, stopping,
};
use crate::daemon::core::schedule::delta;

/// What a job's effects act on.
pub struct Env<'a> {
    pub server: &'a mut ModelOAuth,
    pub store: &'a mut ModelStore,
    pub checker: &'a mut Checker,
    pub rng: &'a mut fastrand::Rng,
    pub now: DateTime<Utc>,
    pub drain: &'a DrainGate,
    /// Grants with a token request out (sent, not yet reported).
    pub in_flight: &'a mut Vec<usize>,
    /// Grants a login redeemed (their first rotation is judged at the login's reply).
    pub logins: &'a mut std::collections::BTreeSet<usize>,
    /// The generation of each slot as last published.
    pub generations: std::collections::BTreeMap<String, u64>,
}

/// A job between two effects.
pub enum Job {
    Refresh {
        name: String,
        generation: u64,
        current: Tokens,
        condition: WriteCondition,
    },
    /// A refresh whose reply rotated the token (journaled): the store write is next.
    RefreshStore {
        name: String,
        generation: u64,
        tokens: Tokens,
        condition: WriteCondition,
        unusable: Option<String>,
        grant: usize,
    },
    Load {
        name: String,
        generation: u64,
    },
    Write {
        name: String,
        generation: u64,
        tokens: Tokens,
        condition: WriteCondition,
    },
    /// A login's journal append before its first store write.
    JournalLogin {
        name: String,
        generation: u64,
        tokens: Tokens,
    },
    Restore {
        name: String,
        generation: u64,
        item: crate::store::StoredCredentials,
    },
    Login {
        name: String,
        ticket: u64,
        provider: String,
        scopes: Vec<String>,
        refresh_token: Secret,
        reply: Reply,
    },
    Logout {
        name: String,
        generation: u64,
        token: Option<Secret>,
        reply: Reply,
        cancelled: usize,
    },
    Revoke {
        slot: String,
        provider: String,
        token: Secret,
        why: &'static str,
    },
    /// The I/O is done: the report is what is left (the token request's grant, if any).
    Report(JobResult, Option<usize>),
}

/// A job and the drain guard it holds while a request is out or its result unreported.
pub struct Running {
    pub job: Job,
    pub guard: Option<InFlight>,
}

/// What one advance of a job led to.
pub enum Step {
    /// More effects to come.
    Next(Running),
    /// The job reports this (the scheduler hands it to the core).
    Report(JobResult),
    /// The job ended without a report.
    Done,
}

/// The place of a refresh token, for the trace.
fn place(token: &Secret) -> String {
    parse(token.expose()).map_or_else(|| "?".to_owned(), |id| format!("g{}#{}", id.grant, id.pos))
}

impl Running {
    /// The slot and refresh token a logout job revokes, if this is one.
    pub fn logout_token(&self) -> Option<(&str, &Secret)> {
        match &self.job {
            Job::Logout {
                name,
                token: Some(token),
                ..
            } => Some((name, token)),
            _ => None,
        }
    }

    /// The next effect, for the trace (tokens by place only).
    pub fn describe(&self) -> String {
        match &self.job {
            Job::Refresh {
                name,
                generation,
                current,
                condition,
            } => format!(
                "send refresh {name} gen {generation} {} {condition:?}",
                place(&current.refresh_token)
            ),
            Job::RefreshStore {
                name,
                tokens,
                condition,
                ..
            } => format!(
                "store refresh {name} {} {condition:?}",
                place(&tokens.refresh_token)
            ),
            Job::Load { name, .. } => format!("load {name}"),
            Job::Write {
                name,
                tokens,
                condition,
                ..
            } => format!(
                "write {name} {} {condition:?}",
                place(&tokens.refresh_token)
            ),
            Job::JournalLogin { name, tokens, .. } => {
                format!("journal login {name} {}", place(&tokens.refresh_token))
            }
            Job::Restore { name, item, .. } => format!(
                "restore {name} {} ({}, {})",
                place(&item.tokens.refresh_token),
                item.generation,
                item.version
            ),
            Job::Login {
                name,
                refresh_token,
                ..
            } => format!("redeem login {name} {}", place(refresh_token)),
            Job::Logout {
                name, generation, ..
            } => format!("logout {name} gen {generation}"),
            Job::Revoke {
                slot, token, why, ..
            } => {
                format!("revoke {slot} {} ({why})", place(token))
            }
            Job::Report(..) => "report".to_owned(),
        }
    }

    /// Performs the job's next effect.
    #[allow(
        clippy::too_many_lines,
        reason = "one arm per kind of effect in flight, each a few lines: the whole table reads best in one place"
    )]
    pub fn advance(self, env: &mut Env<'_>) -> Step {
        let Running { job, mut guard } = self;
        let next = match job {
            Job::Refresh {
                name,
                generation,
                current,
                condition,
            } => {
                // Not sent once stopping, and not reported either (`crate::daemon::jobs`).
                let Some(entered) = env.drain.enter() else {
                    return Step::Done;
                };
                guard = Some(entered);
                send_refresh(env, name, generation, &current, condition)
            }
            Job::RefreshStore {
                name,
                generation,
                tokens,
                condition,
                unusable,
                grant,
            } => {
                let written = env.store.compare_and_set(&name, condition, tokens.clone());
                let outcome = match written {
                    Ok(item) => RefreshOutcome::Stored(item),
                    Err(error @ StoreError::Conflict { .. }) => {
                        RefreshOutcome::Conflict { error, tokens }
                    }
                    Err(error) => RefreshOutcome::Unsaved { tokens, error },
                };
                let result = JobResult::Refreshed {
                    name,
                    generation,
                    outcome,
                    unusable,
                };
                Job::Report(result, Some(grant))
            }
            Job::Load { name, generation } => {
                let result = env.store.load(&name);
                Job::Report(
                    JobResult::Loaded {
                        name,
                        generation,
                        result,
                    },
                    None,
                )
            }
            Job::Write {
                name,
                generation,
                tokens,
                condition,
            } => {
                let result = env.store.compare_and_set(&name, condition, tokens);
                Job::Report(
                    JobResult::Written {
                        name,
                        generation,
                        result,
                    },
                    None,
                )
            }
            Job::JournalLogin {
                name,
                generation,
                tokens,
            } => {
                // A failed append (a full disk): the login then waits for its store
                // write, as it does without a journal.
                let journaled = !env.store.journal_full;
                if journaled {
                    let condition = WriteCondition::NewLogin { generation };
                    env.store.journal_append(&name, condition, tokens);
                }
                let result = JobResult::LoginJournaled {
                    name,
                    generation,
                    journaled,
                };
                Job::Report(result, None)
            }
            Job::Restore {
                name,
                generation,
                item,
            } => {
                let result = env.store.restore_item(&name, item);
                Job::Report(
                    JobResult::Written {
                        name,
                        generation,
                        result,
                    },
                    None,
                )
            }
            Job::Login {
                name,
                ticket,
                provider,
                scopes,
                refresh_token,
                reply,
            } => {
                let Some(entered) = env.drain.enter() else {
                    let _ = reply.send(Err(stopping()));
                    return Step::Done;
                };
                guard = Some(entered);
                let result = redeem_login(env, &refresh_token, &scopes);
                let login = LoginResult {
                    name,
                    provider,
                    ticket,
                    reply,
                    result,
                };
                Job::Report(JobResult::LoggedIn(Box::new(login)), None)
            }
            Job::Logout {
                name,
                generation,
                token,
                reply,
                cancelled,
            } => return logout(env, name, generation, token.as_ref(), reply, cancelled),
            Job::Revoke {
                slot,
                provider,
                token,
                why,
            } => {
                env.server.revoke(&token);
                let report = RevocationReport::First {
                    slot,
                    provider,
                    why,
                    outcome: FirstOutcome::Revoked,
                    logout: None,
                };
                Job::Report(JobResult::Revocation(Box::new(report)), None)
            }
            Job::Report(result, grant) => {
                if let Some(grant) = grant
                    && let Some(i) = env.in_flight.iter().position(|g| *g == grant)
                {
                    env.in_flight.swap_remove(i);
                }
                // The guard drops after the report, as the real job's does.
                return Step::Report(result);
            }
        };
        Step::Next(Running { job: next, guard })
    }
}

/// The token request of a refresh, and the journal append when it rotated.
fn send_refresh(
    env: &mut Env<'_>,
    name: String,
    generation: u64,
    current: &Tokens,
    condition: WriteCondition,
) -> Job {
    let presented = parse(current.refresh_token.expose());
    if let Some(id) = presented {
        // A replaced login's refresh may still go out (its job was queued before the newer
        // login); that lineage is abandoned and revoked, so its durability is not judged.
        if env.generations.get(&name) == Some(&generation) {
            let durable = durable_of(env.store.durable_refresh_tokens());
            env.checker.presented(id, &durable, env.logins);
        }
        let out = env.in_flight.iter().filter(|g| **g == id.grant).count();
        env.checker.token_request(&name, out);
        env.in_flight.push(id.grant);
    }
    let grant = presented.map_or(usize::MAX, |id| id.grant);
    let answer = env.server.refresh(&current.refresh_token, env.rng, env.now);
    let outcome = match answer.outcome {
        TokenOutcome::Refreshed(reply) => {
            let unusable = reply.defect.clone();
            let tokens = refreshed_tokens(reply, current, env.now);
            // `crate::daemon::jobs` journals before the store write: both are one effect here
            // (see the module docs of `super::oauth` on rotations a client cannot learn of).
            env.store.journal_append(&name, condition, tokens.clone());
            return Job::RefreshStore {
                name,
                generation,
                tokens,
                condition,
                unusable,
                grant,
            };
        }
        TokenOutcome::Transient {
            error, retry_after, ..
        } => RefreshOutcome::Transient { error, retry_after },
        TokenOutcome::Permanent { reason, error } => {
            env.checker.refused(&name, generation);
            RefreshOutcome::Permanent { reason, error }
        }
    };
    let result = JobResult::Refreshed {
        name,
        generation,
        outcome,
        unusable: None,
    };
    Job::Report(result, Some(grant))
}

/// A refresh-token login's redemption (`jobs::redeem_login` and `finish_login`).
fn redeem_login(
    env: &mut Env<'_>,
    refresh_token: &Secret,
    scopes: &[String],
) -> Result<LoginSuccess, ErrorReply> {
    let failed = |e: String| ErrorReply::new(ErrorCode::LoginFailed, e);
    if let Some(id) = parse(refresh_token.expose()) {
        env.logins.insert(id.grant);
    }
    match env.server.refresh(refresh_token, env.rng, env.now).outcome {
        TokenOutcome::Refreshed(grant) => {
            let identity = Identity {
                email: grant.account_email.clone(),
                subject: grant.account_subject.clone(),
            };
            let tokens = rotated_tokens(grant, refresh_token, scopes, env.now);
            Ok(LoginSuccess { tokens, identity })
        }
        TokenOutcome::Permanent { error, .. } | TokenOutcome::Transient { error, .. } => {
            Err(failed(error))
        }
    }
}

/// A logout: revoke, delete, answer (`revoke_jobs::logout`), as one effect.
fn logout(
    env: &mut Env<'_>,
    name: String,
    generation: u64,
    token: Option<&Secret>,
    reply: Reply,
    cancelled: usize,
) -> Step {
    if let Some(token) = token {
        env.server.revoke(token);
    }
    let mut answer = LogoutReply {
        name: name.clone(),
        revoked: token.is_some(),
        warning: None,
        cancelled_logins: u32::try_from(cancelled).unwrap_or(u32::MAX),
        revocation_pending: false,
        left_in_claude_code: None,
    };
    if let Err(e) = env.store.delete(&name, generation) {
        answer.warning = Some(format!("the credential item was not deleted: {e}"));
    }
    if token.is_none() {
        let report = RevocationReport::LoggedOut { reply, answer };
        return Step::Report(JobResult::Revocation(Box::new(report)));
    }
    Step::Report(JobResult::Revocation(Box::new(RevocationReport::First {
        slot: name,
        provider: "sim".to_owned(),
        why: "logout",
        outcome: FirstOutcome::Revoked,
        logout: Some((reply, answer)),
    })))
}

/// `jobs::refreshed_tokens` at the simulated time.
fn refreshed_tokens(grant: TokenGrant, current: &Tokens, now: DateTime<Utc>) -> Tokens {
    if grant.defect.is_none() {
        return rotated_tokens(grant, &current.refresh_token, &current.scopes, now);
    }
    Tokens {
        refresh_token: grant
            .refresh_token
            .unwrap_or_else(|| current.refresh_token.clone()),
        ..current.clone()
    }
}

/// `jobs::rotated_tokens` at the simulated time.
fn rotated_tokens(
    grant: TokenGrant,
    refresh_token: &Secret,
    scopes: &[String],
    now: DateTime<Utc>,
) -> Tokens {
    Tokens {
        access_token: grant.access_token,
        refresh_token: grant.refresh_token.unwrap_or_else(|| refresh_token.clone()),
        expires_at: grant
            .expires_in
            .map(|d| now + delta(d.min(oauth::MAX_LIFETIME))),
        obtained_at: now,
        scopes: grant.scope.unwrap_or_else(|| scopes.to_vec()),
    }
}
