//! Sign-in over HTTP: the session layer (identity and CSRF for every route),
//! the pages `/login`, `/signup`, `/logout`, `/setup/{token}` and the JSON API
//! `/api/signup`, `/api/login`, `/api/logout`, `/api/me`, and sign-in through
//! an OpenID provider under `/auth/oidc/`.

mod api;
pub mod cookies;
mod layer;
mod oidc;
mod pages;

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::auth::AuthError;
use crate::auth::sessions::NewSession;

pub use layer::{CsrfToken, resolve_session, session_layer};

/// Routes of sign-in pages and the accounts API.
pub fn router() -> Router<AppState> {
    pages::router().merge(api::router()).merge(oidc::router())
}

/// The refusal of a password sign-in, sign-up or setup while
/// `--no-local-passwords` is on, or `None` when passwords may be used.
pub fn passwords_off(state: &AppState) -> Option<AuthError> {
    (!state.config.auth.local_passwords()).then(|| {
        let provider = state
            .oidc
            .as_ref()
            .map(|o| o.settings.name.as_str())
            .unwrap_or("the organisation's provider");
        AuthError::Refused(format!(
            "pglab's own passwords are turned off on this server: sign in with {provider}"
        ))
    })
}

/// The client's address (socket peer, or the proxy's word with `--trust-proxy`).
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self(cookies::client_addr(
            &parts.headers,
            peer,
            &state.config.auth,
        )))
    }
}

/// The status code of an accounts refusal.
pub fn status_of(err: &AuthError) -> StatusCode {
    match err {
        AuthError::Invalid(_) => StatusCode::BAD_REQUEST,
        AuthError::WrongCredentials => StatusCode::UNAUTHORIZED,
        AuthError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
        AuthError::Refused(_) => StatusCode::FORBIDDEN,
        AuthError::Taken(_) => StatusCode::CONFLICT,
        AuthError::NotFound(_) => StatusCode::NOT_FOUND,
        AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The message shown for an accounts refusal; our own failures are logged
/// and answered with a message that leaks nothing.
pub fn message_of(err: &AuthError) -> String {
    match err {
        AuthError::Internal(e) => {
            tracing::error!(error = ?e, "internal error in accounts");
            "something went wrong on the server; it has been logged".into()
        }
        other => other.to_string(),
    }
}

/// An accounts refusal as a JSON answer `{"error": ...}`.
pub struct ApiError(pub AuthError);

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        Self(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            status_of(&self.0),
            Json(json!({"error": message_of(&self.0)})),
        )
            .into_response()
    }
}

/// Adds the cookies of a new browser session to a response.
pub fn set_session_cookies(headers: &mut HeaderMap, session: &NewSession, secure: bool) {
    headers.append(header::SET_COOKIE, cookies::session(&session.token, secure));
    headers.append(header::SET_COOKIE, cookies::csrf(&session.csrf, secure));
}

/// Where to go after signing in: a local path only, never another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next.map(str::trim) {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.contains(['\r', '\n'])
                // Going back to a sign-in page once signed in would loop.
                && !["/login", "/signup", "/logout", "/setup"]
                    .iter()
                    .any(|p| n.starts_with(p)) =>
        {
            n.to_string()
        }
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/sections/x?y=1")), "/sections/x?y=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "javascript:x",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some("/login?next=/login")), "/");
    }
}
