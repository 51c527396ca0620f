//! `sessctl login`: every login request. A refresh-token login (`login
//! --refresh-token-stdin`) is redeemed in a job; a browser, pasted-code or device login is
//! begun here (`login_begin`), kept as a pending flow (`super::super::login::flows`) and
//! completed (`login_complete`), waited for (`login_wait`) or cancelled (`login_cancel`).
//! Every login ends in the one completion path, `super::super::login`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use tokio::sync::{oneshot, watch};

use crate::config::Provider;
use crate::oauth;
use crate::protocol::{
    ErrorCode, ErrorReply, LOGIN_WAIT_SLICE_SECS, LoginBegin, LoginBegun, LoginComplete, LoginFlow,
    LoginRequest, Response,
};
use crate::slot_name;

use super::super::login::flow_input::{constant_time_eq, loopback_redirect, new_flow_id};
use super::super::login::flows::{MAX_FLOW_LIFETIME, MAX_PENDING_FLOWS, PendingFlow, PendingKind};
use super::super::orders::JobOrder;
use super::super::schedule::delta;
use super::super::{Manager, Reply};

impl Manager {
    /// `login`: checks the request, then redeems the refresh token in a job; the result
    /// comes back to `Manager::on_logged_in`, which picks the slot.
    pub(in crate::daemon) fn handle_login(&mut self, login: LoginRequest, reply: Reply) {
        if let Err(message) = slot_name::validate(&login.name) {
            let _ = reply.send(Err(ErrorReply::new(ErrorCode::InvalidName, message)));
            return;
        }
        let Some(provider) = self.config.providers.get(&login.provider).cloned() else {
            let known: Vec<&str> = self.config.providers.keys().map(String::as_str).collect();
            let _ = reply.send(Err(ErrorReply::new(
                ErrorCode::UnknownProvider,
                format!(
                    "no provider named {:?}; configured providers: {}",
                    login.provider,
                    known.join(", ")
                ),
            )));
            return;
        };
        if login.refresh_token.expose().trim().is_empty() {
            let _ = reply.send(Err(ErrorReply::new(
                ErrorCode::BadRequest,
                "the refresh token is empty",
            )));
            return;
        }
        let token = crate::secret::Secret::new(login.refresh_token.expose().trim());
        tracing::info!(slot = login.name, provider = provider.name, "login started");
        let ticket = self.login_tickets.issue();
        self.login_tickets.exchanging(ticket, &login.name);
        self.jobs.push(JobOrder::Login {
            name: login.name,
            ticket,
            provider,
            refresh_token: token,
            reply,
        });
    }

    /// `login_begin`: checks the request, then builds the authorization URL (browser,
    /// manual) or starts the device authorization job (device).
    pub(in crate::daemon) fn handle_login_begin(&mut self, begin: &LoginBegin, reply: Reply) {
        let now = self.now;
        self.flows.prune(now);
        let provider = match self.check_begin(begin) {
            Ok(provider) => provider,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        let claude_code = match self.claude_code_target(&begin.name, begin.claude_code.as_deref()) {
            Ok(dir) => dir,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        let lifetime = Duration::from_secs(begin.timeout_secs).min(MAX_FLOW_LIFETIME);
        let expires_at = now + delta(lifetime);
        let flow_id = new_flow_id();
        let ticket = self.login_tickets.issue();
        self.note_claude_code_login(ticket, claude_code.clone());
        let kind = match &begin.flow {
            LoginFlow::Browser { redirect_uri } => match loopback_redirect(redirect_uri) {
                Ok(redirect_uri) => begin_code_flow(&provider, redirect_uri, &flow_id, expires_at),
                Err(error) => Err(error),
            },
            LoginFlow::Manual => match provider.manual_redirect_uri.clone() {
                Some(redirect_uri) => {
                    begin_code_flow(&provider, redirect_uri, &flow_id, expires_at)
                }
                None => Err(ErrorReply::new(ErrorCode::Internal, "checked above")),
            },
            LoginFlow::Device => {
                let (result_tx, result) = watch::channel(None);
                let (cancel, cancelled) = oneshot::channel();
                tracing::info!(slot = begin.name, "device login started");
                let login = crate::daemon::core::orders::DeviceLogin {
                    name: begin.name.clone(),
                    provider: provider.clone(),
                    flow_id: flow_id.clone(),
                    expires_at,
                    ticket,
                    claude_code,
                };
                // The job answers `reply` once the provider has given a user code.
                self.jobs.push(JobOrder::DeviceLogin {
                    login,
                    begun: reply,
                    done: result_tx,
                    cancelled,
                });
                self.insert_flow(
                    flow_id,
                    begin,
                    (provider, ticket),
                    expires_at,
                    PendingKind::Device { result, cancel },
                );
                return;
            }
        };
        match kind {
            Ok((started, kind)) => {
                let _ = reply.send(Ok(Response::LoginBegun(started)));
                self.insert_flow(flow_id, begin, (provider, ticket), expires_at, kind);
            }
            Err(error) => {
                let _ = reply.send(Err(error));
            }
        }
    }

    fn insert_flow(
        &mut self,
        flow_id: String,
        begin: &LoginBegin,
        (provider, ticket): (Provider, u64),
        expires_at: DateTime<Utc>,
        kind: PendingKind,
    ) {
        tracing::info!(slot = begin.name, flow = ?begin.flow, "login flow begun");
        self.flows.flows.insert(
            flow_id,
            PendingFlow {
                name: begin.name.clone(),
                provider,
                expires_at,
                ticket,
                kind,
            },
        );
    }

    /// The provider of a `login_begin`, if the request can work: a valid slot name, a
    /// known provider with the endpoint the flow needs, room for one more pending login.
    fn check_begin(&self, begin: &LoginBegin) -> Result<Provider, ErrorReply> {
        slot_name::validate(&begin.name)
            .map_err(|message| ErrorReply::new(ErrorCode::InvalidName, message))?;
        let Some(provider) = self.config.providers.get(&begin.provider) else {
            let known: Vec<&str> = self.config.providers.keys().map(String::as_str).collect();
            return Err(ErrorReply::new(
                ErrorCode::UnknownProvider,
                format!(
                    "no provider named {:?}; configured providers: {}",
                    begin.provider,
                    known.join(", ")
                ),
            ));
        };
        let missing = match begin.flow {
            LoginFlow::Browser { .. } => provider
                .authorize_url
                .is_none()
                .then_some(vec!["authorize_url"]),
            LoginFlow::Manual => {
                let keys: Vec<&str> = [
                    ("authorize_url", provider.authorize_url.is_none()),
                    (
                        "manual_redirect_uri",
                        provider.manual_redirect_uri.is_none(),
                    ),
                ]
                .into_iter()
                .filter_map(|(key, absent)| absent.then_some(key))
                .collect();
                (!keys.is_empty()).then_some(keys)
            }
            LoginFlow::Device => provider
                .device_authorization_url
                .is_none()
                .then_some(vec!["device_authorization_url"]),
        };
        if let Some(keys) = missing {
            let keys: Vec<String> = keys
                .iter()
                .map(|k| format!("providers.{}.{k}", provider.name))
                .collect();
            return Err(ErrorReply::new(
                ErrorCode::FlowUnsupported,
                format!(
                    "provider {} cannot do this login: the config has no {}; use `{}` instead",
                    provider.name,
                    keys.join(" and "),
                    crate::relogin::command(&begin.name, provider, false)
                ),
            ));
        }
        if begin.timeout_secs == 0 {
            return Err(ErrorReply::new(
                ErrorCode::BadRequest,
                "timeout_secs must be at least 1",
            ));
        }
        if self.flows.flows.len() >= MAX_PENDING_FLOWS {
            return Err(ErrorReply::new(
                ErrorCode::LoginFailed,
                format!(
                    "{MAX_PENDING_FLOWS} logins are already in progress; finish or cancel one first"
                ),
            ));
        }
        Ok(provider.clone())
    }

    /// `login_complete`: checks the state against the pending login (which is forgotten
    /// either way: a code is single-use), then exchanges the code in a job.
    pub(in crate::daemon) fn handle_login_complete(
        &mut self,
        complete: LoginComplete,
        reply: Reply,
    ) {
        self.flows.prune(self.now);
        let Some(flow) = self.flows.flows.remove(&complete.flow_id) else {
            let error = self.flows.cancellation(&complete.flow_id);
            let _ = reply.send(Err(error.unwrap_or_else(unknown_flow)));
            return;
        };
        let PendingFlow {
            name,
            provider,
            ticket,
            kind,
            ..
        } = flow;
        let PendingKind::Code {
            redirect_uri,
            state,
            verifier,
        } = kind
        else {
            let _ = reply.send(Err(ErrorReply::new(
                ErrorCode::BadRequest,
                "this is a device login: wait for it with login_wait",
            )));
            return;
        };
        if !constant_time_eq(state.expose().as_bytes(), complete.state.as_bytes()) {
            tracing::warn!(slot = name, "login refused: the state does not match");
            let _ = reply.send(Err(ErrorReply::new(
                ErrorCode::LoginFailed,
                "the state does not match this login (a code from another login attempt, or a forged redirect); nothing was changed: run the login again",
            )));
            return;
        }
        if complete.code.expose().trim().is_empty() {
            let _ = reply.send(Err(ErrorReply::new(
                ErrorCode::BadRequest,
                "the authorization code is empty",
            )));
            return;
        }
        tracing::info!(slot = name, "exchanging an authorization code");
        self.login_tickets.exchanging(ticket, &name);
        let login = crate::daemon::core::orders::CodeLogin {
            name,
            provider,
            redirect_uri,
            code: complete.code,
            verifier,
            state,
            ticket,
            claude_code: self.claude_code_logins.dir(ticket).cloned(),
        };
        self.jobs.push(JobOrder::CodeLogin { login, reply });
    }

    /// `login_wait`: the device login's outcome, or `login_pending` after at most
    /// [`LOGIN_WAIT_SLICE_SECS`]. A browser or pasted-code login answers `login_pending` at
    /// once while it is pending: its CLI asks to learn of a cancellation by logout.
    pub(in crate::daemon) fn handle_login_wait(&mut self, flow_id: &str, reply: Reply) {
        self.flows.prune(self.now);
        let Some(flow) = self.flows.flows.get(flow_id) else {
            let error = self.flows.cancellation(flow_id);
            let _ = reply.send(Err(error.unwrap_or_else(unknown_flow)));
            return;
        };
        let PendingKind::Device { result, .. } = &flow.kind else {
            let _ = reply.send(Ok(Response::LoginPending));
            return;
        };
        let finished = result.borrow().clone();
        if let Some(done) = finished {
            self.flows.flows.remove(flow_id);
            let _ = reply.send(done);
            return;
        }
        let result = result.clone();
        self.jobs.push(JobOrder::AwaitDevice {
            result,
            slice: Duration::from_secs(LOGIN_WAIT_SLICE_SECS),
            reply,
        });
    }

    /// `login_cancel`: forgets the login; a device login's polling stops.
    pub(in crate::daemon) fn handle_login_cancel(&mut self, flow_id: &str, reply: Reply) {
        match self.flows.flows.remove(flow_id) {
            Some(flow) => {
                tracing::info!(slot = flow.name, "login cancelled");
                let _ = reply.send(Ok(Response::LoginCancelled));
            }
            None => {
                let _ = reply.send(Err(unknown_flow()));
            }
        }
    }
}

/// A browser or pasted-code login's URL (fresh PKCE pair and state) and what it keeps.
fn begin_code_flow(
    provider: &Provider,
    redirect_uri: Url,
    flow_id: &str,
    expires_at: DateTime<Utc>,
) -> Result<(LoginBegun, PendingKind), ErrorReply> {
    let Some(authorize_url) = &provider.authorize_url else {
        return Err(ErrorReply::new(
            ErrorCode::FlowUnsupported,
            format!("provider {} has no authorize_url", provider.name),
        ));
    };
    let start = oauth::authorization_url(provider, authorize_url, &redirect_uri);
    let begun = LoginBegun {
        flow_id: flow_id.to_owned(),
        expires_at,
        authorize_url: Some(start.url.to_string()),
        device: None,
    };
    let kind = PendingKind::Code {
        redirect_uri,
        state: start.state,
        verifier: start.verifier,
    };
    Ok((begun, kind))
}

fn unknown_flow() -> ErrorReply {
    ErrorReply::new(
        ErrorCode::UnknownFlow,
        "no such login in progress (it finished, was cancelled or timed out): run the login again",
    )
}
