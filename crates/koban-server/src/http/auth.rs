//! Credentials from the `Authorization` header. Ingest tokens are accepted in every form
//! a shipper can send one: `Bearer T`, `Splunk T`, `ApiKey T` (or Elastic's
//! `ApiKey base64(id:T)`), and Basic auth with the token as the password.

use axum::http::{header, HeaderMap};
use base64::Engine;

use super::error::{ApiError, Flavor};
use super::AppState;
use crate::state::TokenBinding;

fn b64(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// `Basic` credentials as (user, password).
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = b64(rest)?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// Every string in the header that could be a token, best guess first.
pub fn token_candidates(headers: &HeaderMap) -> Vec<String> {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    let Some((scheme, rest)) = v.trim().split_once(' ') else {
        return Vec::new();
    };
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "splunk" => vec![rest.to_owned()],
        "apikey" => {
            let mut out = vec![rest.to_owned()];
            if let Some(d) = b64(rest) {
                if let Some((_, key)) = d.split_once(':') {
                    out.push(key.to_owned());
                }
                out.push(d);
            }
            out
        }
        "basic" => basic(headers).map(|(_, p)| vec![p]).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The tenant + source the request's ingest token is bound to.
pub fn ingest(
    state: &AppState,
    headers: &HeaderMap,
    flavor: Flavor,
) -> Result<TokenBinding, ApiError> {
    let candidates = token_candidates(headers);
    if candidates.is_empty() {
        state
            .intake
            .metrics
            .auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(ApiError::unauthorized(flavor, true));
    }
    for c in candidates.iter().filter(|c| c.starts_with("kbi_")) {
        match state.state.ingest_token(c) {
            Ok(Some(binding)) => return Ok(binding),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "token lookup failed");
                return Err(ApiError::internal(flavor));
            }
        }
    }
    Err(counted(state, ApiError::unauthorized(flavor, false)))
}

/// Counts a refused credential for `/metrics` and passes the refusal on.
pub(super) fn counted(state: &AppState, refusal: ApiError) -> ApiError {
    state
        .intake
        .metrics
        .auth_failures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    refusal
}
