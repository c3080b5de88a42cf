//! Who is calling: a console session (cookie, with a CSRF token for every change), an
//! API token (`Bearer kba_…`), or Basic auth with a user's password (argon2, lockout).
//! Every handler that touches tenant data takes a [`Caller`] and goes through
//! [`crate::guard::Guard`].

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};

use super::error::{ApiError, Flavor};
use super::{auth, AppState, PeerAddr};
use crate::access::{Denied, Principal};
use crate::identity::Login;
use crate::state::now_ms;

pub const SESSION_COOKIE: &str = "koban_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Principal,
    /// Set for console sessions: changes must carry it.
    pub csrf: Option<String>,
    pub remote: Option<SocketAddr>,
}

/// A cookie's value from the `Cookie` header.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "identity lookup failed");
    ApiError::internal(Flavor::Koban)
}

/// Authenticates a request from its headers.
pub async fn authenticate(st: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        return match st.state.session(&token, now_ms()).map_err(internal)? {
            Some((who, csrf)) => Ok(Caller {
                who,
                csrf: Some(csrf),
                remote: None,
            }),
            None => Err(ApiError::unauthorized(Flavor::Koban, false)),
        };
    }
    if let Some((user, password)) = auth::basic(headers) {
        let state = st.state.clone();
        // argon2 is deliberately slow: keep it off the async threads.
        let login = tokio::task::spawn_blocking(move || state.login(&user, &password, now_ms()))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        return match login {
            Login::Ok(who) => Ok(Caller {
                who,
                csrf: None,
                remote: None,
            }),
            Login::Locked(_) => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Flavor::Koban,
                "account locked after repeated failed logins: try again later",
                0,
            )),
            Login::Refused => Err(ApiError::unauthorized(Flavor::Koban, false)),
        };
    }
    let candidates = auth::token_candidates(headers);
    if candidates.is_empty() {
        return Err(ApiError::unauthorized(Flavor::Koban, true));
    }
    for c in candidates.iter().filter(|c| c.starts_with("kba_")) {
        if let Some(who) = st.state.token_principal(c).map_err(internal)? {
            return Ok(Caller {
                who,
                csrf: None,
                remote: None,
            });
        }
    }
    Err(auth::counted(
        st,
        ApiError::unauthorized(Flavor::Koban, false),
    ))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let mut caller = authenticate(st, &parts.headers).await?;
        caller.remote = parts
            .extensions
            .get::<ConnectInfo<PeerAddr>>()
            .map(|c| c.0 .0);
        let changes = !matches!(parts.method, Method::GET | Method::HEAD);
        if changes {
            if let Some(want) = &caller.csrf {
                let got = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                if got != Some(want.as_str()) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        Flavor::Koban,
                        "missing or wrong CSRF token",
                        0,
                    ));
                }
            }
        }
        Ok(caller)
    }
}

/// A refusal: another tenant's object is answered as not found, a role's limit as 403.
pub fn denied(d: Denied) -> ApiError {
    match d {
        Denied::OtherTenant => ApiError::not_found("not found"),
        Denied::Role { .. } => {
            let mut e = ApiError::new(StatusCode::FORBIDDEN, Flavor::Koban, "forbidden", 0);
            e.detail = Some(d.to_string());
            e
        }
    }
}
