//! The jobs of the interactive logins: exchanging a browser or pasted code, and a device
//! login from its authorization request to the end of its polling. Both end like a
//! refresh-token login: [`JobContext::finish_login`] learns the account, and the manager's
//! one completion path (`Manager::on_logged_in`) gets a [`JobResult::LoggedIn`] and places
//! and stores the tokens. Both hold a drain guard (`crate::daemon::core::drain`) while a request is out, so
//! a graceful stop waits for it; a device login gives it up between polls.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{oneshot, watch};

use crate::config::Provider;
use crate::oauth::{DeviceDetails, FlowFailure, PermanentReason, TokenGrant};
use crate::protocol::{DeviceCode, ErrorCode, ErrorReply, LoginBegun, Response};

use crate::daemon::core::Reply;
use crate::daemon::core::drain::{DrainGate, InFlight};
use crate::daemon::core::login::flows::DeviceResult;
use crate::daemon::core::orders::Urgency;
use crate::daemon::core::orders::{CodeLogin, DeviceLogin};
use crate::daemon::core::reports::{JobResult, LoginResult, LoginSuccess, stopping};
use crate::daemon::core::schedule::delta;
use crate::daemon::jobs::JobContext;
use crate::daemon::jobs::limiter::{Limiter, Permit};

impl JobContext {
    /// Exchanges the code, then finishes the login; `reply` gets the login's outcome.
    pub fn code_login(&self, login: CodeLogin, reply: Reply) {
        let Some(in_flight) = self.drain.enter() else {
            let _ = reply.send(Err(stopping()));
            return;
        };
        let ctx = self.clone();
        tokio::spawn(async move {
            let _in_flight = in_flight;
            // A person is at the browser: ahead of every queued refresh, held through the
            // userinfo request that may follow.
            let _permit = ctx.token_limit.acquire(Urgency::Interactive).await;
            let grant = ctx
                .oauth
                .exchange_code(
                    &login.provider,
                    &login.redirect_uri,
                    &login.code,
                    &login.verifier,
                    &login.state,
                )
                .await;
            let dir = login.claude_code.as_deref();
            let result = ctx
                .finish_flow(&login.name, &login.provider, dir, grant)
                .await;
            ctx.report(JobResult::LoggedIn(Box::new(LoginResult {
                name: login.name,
                provider: login.provider.name.clone(),
                ticket: login.ticket,
                reply,
                result,
            })));
        });
    }

    /// Asks for a user code (answering `begun` with it), polls until the user approves,
    /// refuses or time runs out, then finishes the login. The outcome goes to `done`; when
    /// `cancelled` resolves (the pending login was forgotten), polling stops, and a reason
    /// sent on it (a logout) becomes the outcome.
    pub fn device_login(
        &self,
        login: DeviceLogin,
        begun: Reply,
        done: watch::Sender<DeviceResult>,
        cancelled: oneshot::Receiver<ErrorReply>,
    ) {
        let Some(in_flight) = self.drain.enter() else {
            let _ = begun.send(Err(stopping()));
            done.send_replace(Some(Err(stopping())));
            return;
        };
        let ctx = self.clone();
        tokio::spawn(async move {
            // Held while a request is out or a result unreported, dropped while waiting
            // between polls (`poll_pause`): a stop waits for a poll in flight, not for the
            // user.
            let held = Arc::new(Mutex::new(Some(in_flight)));
            let Some(device_url) = login.provider.device_authorization_url.clone() else {
                return;
            };
            // Each request (the authorization, every poll) holds a token permit while it is
            // out, none while waiting between polls (`poll_pause`).
            let permit = ctx.token_limit.acquire(Urgency::Interactive).await;
            let details = match ctx
                .oauth
                .device_authorization(&login.provider, &device_url)
                .await
            {
                Ok(details) => details,
                Err(failure) => {
                    let error = flow_error(
                        &login.provider,
                        &login.name,
                        login.claude_code.as_deref(),
                        failure,
                    );
                    tracing::warn!(slot = login.name, "device login failed: {}", error.message);
                    let _ = begun.send(Err(error.clone()));
                    done.send_replace(Some(Err(error)));
                    return;
                }
            };
            let _ = begun.send(Ok(Response::LoginBegun(begun_reply(&login, &details))));
            let permit = Arc::new(Mutex::new(Some(permit)));
            let polled = tokio::select! {
                polled = ctx.oauth.poll_device(
                    &login.provider,
                    &details,
                    login.expires_at,
                    poll_pause(&ctx.drain, &held, (&ctx.token_limit, &permit)),
                ) => polled,
                reason = cancelled => {
                    tracing::info!(slot = login.name, "device login cancelled; polling stopped");
                    if let Ok(reason) = reason {
                        done.send_replace(Some(Err(reason)));
                    }
                    return;
                }
            };
            let in_flight = lock(&held).take();
            let dir = login.claude_code.as_deref();
            let result = ctx
                .finish_flow(&login.name, &login.provider, dir, polled)
                .await;
            let (reply, outcome) = oneshot::channel();
            ctx.report(JobResult::LoggedIn(Box::new(LoginResult {
                name: login.name,
                provider: login.provider.name.clone(),
                ticket: login.ticket,
                reply,
                result,
            })));
            drop(in_flight);
            let outcome = outcome.await.unwrap_or_else(|_| {
                Err(ErrorReply::new(
                    ErrorCode::ShuttingDown,
                    "the daemon is shutting down",
                ))
            });
            done.send_replace(Some(outcome));
        });
    }

    /// A flow's tokens through the shared end of every login, or its failure as a reply.
    async fn finish_flow(
        &self,
        name: &str,
        provider: &Provider,
        dir: Option<&Path>,
        grant: Result<TokenGrant, FlowFailure>,
    ) -> Result<LoginSuccess, ErrorReply> {
        let grant = grant.map_err(|failure| flow_error(provider, name, dir, failure))?;
        let Some(refresh_token) = grant.refresh_token.clone() else {
            return Err(ErrorReply::new(
                ErrorCode::LoginFailed,
                format!(
                    "provider {} issued no refresh token, so the slot could not be kept fresh (does it need a scope such as offline_access in providers.{}.scopes?)",
                    provider.name, provider.name
                ),
            ));
        };
        self.finish_login(name, provider, grant, &refresh_token)
            .await
    }
}

/// The wait between two device polls: gives up the drain guard and the token permit while
/// waiting, and takes both back before the next poll (the permit at
/// [`Urgency::Interactive`]); once the daemon is stopping it never ends, so the poll that
/// would follow is never sent.
fn poll_pause(
    drain: &DrainGate,
    held: &Arc<Mutex<Option<InFlight>>>,
    (limiter, permit): (&Limiter, &Arc<Mutex<Option<Permit>>>),
) -> impl Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let drain = drain.clone();
    let held = Arc::clone(held);
    let (limiter, permit) = (limiter.clone(), Arc::clone(permit));
    move |pause| {
        let drain = drain.clone();
        let held = Arc::clone(&held);
        let (limiter, permit) = (limiter.clone(), Arc::clone(&permit));
        Box::pin(async move {
            drop(lock(&permit).take());
            drop(lock(&held).take());
            tokio::time::sleep(pause).await;
            match drain.enter() {
                Some(in_flight) => *lock(&held) = Some(in_flight),
                None => std::future::pending::<()>().await,
            }
            let next = limiter.acquire(Urgency::Interactive).await;
            *lock(&permit) = Some(next);
        })
    }
}

/// A guard slot, even if a thread panicked while holding it (it holds plain data).
fn lock<T>(held: &Mutex<Option<T>>) -> std::sync::MutexGuard<'_, Option<T>> {
    held.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the CLI shows for a device login.
fn begun_reply(login: &DeviceLogin, details: &DeviceDetails) -> LoginBegun {
    // Capped: the provider's `expires_in` could otherwise overflow the date.
    let lifetime = details.expires_in().min(crate::oauth::MAX_LIFETIME);
    let code_expires_at = Utc::now() + delta(lifetime);
    LoginBegun {
        flow_id: login.flow_id.clone(),
        expires_at: login.expires_at.min(code_expires_at),
        authorize_url: None,
        device: Some(DeviceCode {
            user_code: details.user_code().secret().clone(),
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| u.secret().clone()),
            expires_at: code_expires_at,
            interval: details.interval().as_secs(),
        }),
    }
}

/// A failed flow as the CLI's error: what happened and what to do.
fn flow_error(
    provider: &Provider,
    name: &str,
    dir: Option<&Path>,
    failure: FlowFailure,
) -> ErrorReply {
    let again = format!("run `{}` again", again_command(provider, name, dir));
    let message = match failure {
        FlowFailure::Denied => {
            "the login was refused at the provider (access_denied); nothing was changed".to_owned()
        }
        FlowFailure::Expired => format!("the login expired before it was approved; {again}"),
        FlowFailure::Refused {
            reason: PermanentReason::SessionExpired,
            ..
        } => format!(
            "the provider refused the authorization code (invalid_grant): it expired or was already used; log in again: {}",
            again_command(provider, name, dir)
        ),
        FlowFailure::Refused { error, .. } => format!(
            "the provider refuses this client ({error}): the client_id in the config (providers.{}.client_id) is wrong",
            provider.name
        ),
        FlowFailure::Failed { cause, error } => match cause.advice() {
            Some(advice) => {
                tracing::info!(slot = name, "login request failed: {error}");
                advice
            }
            None => format!("{error}; {again}"),
        },
    };
    ErrorReply::new(ErrorCode::LoginFailed, message)
}

/// The command that starts this login again: into the same Claude Code config dir, when it
/// went into one (a login without `--claude-code` would go into sessctl's store instead).
fn again_command(provider: &Provider, name: &str, dir: Option<&Path>) -> String {
    let command = format!("sessctl login {name} --provider {}", provider.name);
    match dir {
        Some(dir) => format!(
            "{command} --claude-code {}",
            crate::relogin::shell_word(dir)
        ),
        None => command,
    }
}

/// Why the provider refused a refresh token handed to `login`, and what to do.
pub(in crate::daemon) fn refused_refresh_token(
    provider: &Provider,
    reason: PermanentReason,
) -> String {
    match reason {
        PermanentReason::SessionExpired => "the provider refused this refresh token (invalid_grant): it is spent or revoked; get a new refresh token and log in with it".to_owned(),
        PermanentReason::ClientRejected => format!(
            "the provider refuses this client (invalid_client): the client_id in the config (providers.{}.client_id) is wrong",
            provider.name
        ),
    }
}
