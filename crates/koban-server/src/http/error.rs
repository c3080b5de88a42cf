//! The one HTTP error type. Each endpoint family answers in the shape its clients parse
//! (Elasticsearch, Splunk HEC, our own); internals are logged where they happen and
//! never put in a response.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::intake::IntakeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Koban,
    Elastic,
    Hec,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub flavor: Flavor,
    pub message: &'static str,
    /// HEC's numeric status code (`{"text":..,"code":..}`).
    pub hec_code: u16,
    pub retry_after: Option<u64>,
    /// A specific message for this request (what was wrong, and where), shown instead
    /// of `message` in Koban's own shape.
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, flavor: Flavor, message: &'static str, hec_code: u16) -> Self {
        ApiError {
            status,
            flavor,
            message,
            hec_code,
            retry_after: None,
            detail: None,
        }
    }

    /// 400 with a message naming what was wrong.
    pub fn invalid(detail: impl Into<String>) -> Self {
        let mut e = ApiError::bad_request(Flavor::Koban, "invalid request");
        e.detail = Some(detail.into());
        e
    }

    /// 404 naming what is missing.
    pub fn not_found(detail: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::NOT_FOUND, Flavor::Koban, "not found", 6);
        e.detail = Some(detail.into());
        e
    }

    pub fn unauthorized(flavor: Flavor, missing: bool) -> Self {
        if missing {
            ApiError::new(StatusCode::UNAUTHORIZED, flavor, "Token is required", 2)
        } else {
            ApiError::new(StatusCode::UNAUTHORIZED, flavor, "Invalid token", 4)
        }
    }

    pub fn bad_request(flavor: Flavor, message: &'static str) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, flavor, message, 6)
    }

    pub fn internal(flavor: Flavor) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            flavor,
            "internal error",
            8,
        )
    }

    pub fn from_intake(e: IntakeError, flavor: Flavor, retry_after: u64) -> Self {
        let mut err = match e {
            // HEC clients treat 503 "server is busy" as retryable; ES clients use 429.
            IntakeError::Busy if flavor == Flavor::Hec => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, flavor, "Server is busy", 9)
            }
            IntakeError::Busy => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                flavor,
                "intake is throttled: retry later",
                9,
            ),
            IntakeError::DiskFull => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                flavor,
                "intake stopped: disk full",
                9,
            ),
            IntakeError::TooLarge => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, flavor, "record too large", 6)
            }
            IntakeError::Wal(_) | IntakeError::ShuttingDown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, flavor, "intake stopped", 9)
            }
        };
        if err.status == StatusCode::TOO_MANY_REQUESTS
            || err.status == StatusCode::SERVICE_UNAVAILABLE
        {
            err.retry_after = Some(retry_after);
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.flavor {
            Flavor::Koban => json!({ "error": self.detail.as_deref().unwrap_or(self.message) }),
            Flavor::Hec => json!({ "text": self.message, "code": self.hec_code }),
            Flavor::Elastic => {
                let kind = match self.status {
                    StatusCode::UNAUTHORIZED => "security_exception",
                    StatusCode::TOO_MANY_REQUESTS => "es_rejected_execution_exception",
                    StatusCode::BAD_REQUEST => "parse_exception",
                    _ => "exception",
                };
                json!({
                    "error": { "root_cause": [{ "type": kind, "reason": self.message }],
                               "type": kind, "reason": self.message },
                    "status": self.status.as_u16()
                })
            }
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED && self.flavor == Flavor::Elastic {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"security\" charset=\"UTF-8\", ApiKey"),
            );
        }
        resp
    }
}
