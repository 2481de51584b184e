//! Sign-in through the OpenID provider: `GET /auth/oidc/start` (redirect to
//! the provider), `GET /auth/oidc/callback` (its redirect back), and
//! `GET|POST /auth/oidc/join` (the join code of a new learner). All 404 when
//! OpenID Connect is off. Thin over `auth::oidc`; every refusal is a page
//! that says what went wrong, with the status of its kind.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::pages::MessagePage;
use super::{CsrfToken, cookies, message_of, safe_next, set_session_cookies, status_of};
use crate::app::AppState;
use crate::auth::oidc::{self, Oidc, OidcError, Outcome, pending};

/// Path of the callback the provider redirects to (registered there).
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/oidc/start", get(start))
        .route(CALLBACK_PATH, get(callback))
        .route("/auth/oidc/join", get(join_form).post(join_submit))
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/oidc_join.html")]
struct JoinPage {
    csrf: String,
    provider: String,
    username: String,
    code: String,
    error: Option<String>,
}

/// The status of an OpenID Connect refusal.
fn status(err: &OidcError) -> StatusCode {
    match err {
        OidcError::Unreachable(_) | OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
        OidcError::UnknownState => StatusCode::BAD_REQUEST,
        OidcError::Token(_) => StatusCode::UNAUTHORIZED,
        OidcError::Claims(_) => StatusCode::FORBIDDEN,
        OidcError::Auth(e) => status_of(e),
    }
}

fn message(err: &OidcError) -> String {
    match err {
        OidcError::Auth(e) => message_of(e),
        other => other.to_string(),
    }
}

/// A refusal as a page (the message is also in the log).
fn refused(oidc: &Oidc, err: &OidcError) -> Response {
    tracing::info!(error = %err, "OpenID Connect sign-in refused");
    (
        status(err),
        MessagePage {
            title: format!("Sign-in with {} failed", oidc.settings.name),
            text: message(err),
        },
    )
        .into_response()
}

/// The configured provider; `None` (the handler answers 404) when OpenID Connect is off.
fn enabled(state: &AppState) -> Option<Arc<Oidc>> {
    state.oidc.clone()
}

/// Where the provider sends the browser back: under `--public-url`, else
/// under the address this request came to (the provider compares it with
/// the registered redirect URI, so a forged Host only breaks the sign-in).
fn redirect_uri(headers: &HeaderMap, state: &AppState) -> Result<String, OidcError> {
    if let Some(base) = state.config.public_url() {
        return Ok(format!("{}{CALLBACK_PATH}", base.trim_end_matches('/')));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .ok_or_else(|| {
            OidcError::Claims(
                "this request names no usable host; set --public-url for OpenID Connect".into(),
            )
        })?;
    let scheme = if cookies::is_https(headers, &state.config.auth) {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{host}{CALLBACK_PATH}"))
}

/// This browser's OpenID Connect key: its `pglab_oidc` cookie when it is one
/// of ours (two tabs signing in at once share it), else a new one.
fn browser_key(headers: &HeaderMap) -> (String, bool) {
    match cookies::get(headers, cookies::OIDC)
        .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        Some(key) => (key, false),
        None => (oidc::new_key(), true),
    }
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
    code: Option<String>,
}

/// Sends the browser to the provider, with a fresh state, nonce and PKCE challenge.
async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    let Some(oidc) = enabled(&state) else {
        return crate::web::pages::not_found_response();
    };
    let next = safe_next(q.next.as_deref());
    let (key, _) = browser_key(&headers);
    let result = async {
        let uri = redirect_uri(&headers, &state)?;
        oidc.start(state.store.pool(), &uri, &key, &next, q.code.as_deref())
            .await
    }
    .await;
    match result {
        Ok(url) => {
            let mut response = Redirect::to(&url).into_response();
            let secure = cookies::is_https(&headers, &state.config.auth);
            // Refreshed on every start: it must outlive the flow and the join.
            let age = pending::FLOW_TTL_SECS + pending::JOIN_TTL_SECS;
            response.headers_mut().append(
                header::SET_COOKIE,
                cookies::oidc(cookies::OIDC, &key, secure, age),
            );
            response
        }
        Err(err) => refused(&oidc, &err),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// The provider's name for itself (RFC 9207), against mix-up attacks.
    iss: Option<String>,
}

/// The provider's redirect back: signs in, or asks for a join code.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(oidc) = enabled(&state) else {
        return crate::web::pages::not_found_response();
    };
    let secure = cookies::is_https(&headers, &state.config.auth);
    let browser = cookies::get(&headers, cookies::OIDC);
    let result = match (q.error, q.code, q.state) {
        (Some(error), _, st) => {
            // Used up even so: the same state must not work later.
            if let Some(st) = st {
                let _ = pending::take_flow(state.store.pool(), &st, browser.as_deref()).await;
            }
            let detail = q.error_description.unwrap_or_default();
            Err(OidcError::Provider(if error == "access_denied" {
                format!(
                    "the sign-in was cancelled or not allowed ({error}{}{detail})",
                    sep(&detail)
                )
            } else {
                format!("{error}{}{detail}", sep(&detail))
            }))
        }
        (None, Some(_), Some(st)) if q.iss.as_ref().is_some_and(|i| *i != oidc.settings.issuer) => {
            let _ = pending::take_flow(state.store.pool(), &st, browser.as_deref()).await;
            Err(OidcError::Provider(
                "the answer names another issuer than the one configured".into(),
            ))
        }
        (None, Some(code), Some(st)) => {
            oidc.finish(
                state.store.pool(),
                state.config.auth.lifetimes(),
                &st,
                &code,
                browser.as_deref(),
            )
            .await
        }
        _ => Err(OidcError::UnknownState),
    };
    match result {
        Ok(Outcome::SignedIn { session, next, .. }) => {
            let mut response = Redirect::to(&next).into_response();
            set_session_cookies(response.headers_mut(), &session, secure);
            response
        }
        Ok(Outcome::NeedsJoinCode { join_key }) => {
            let mut response = Redirect::to("/auth/oidc/join").into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                cookies::oidc(
                    cookies::OIDC_JOIN,
                    &join_key,
                    secure,
                    pending::JOIN_TTL_SECS,
                ),
            );
            response
        }
        Err(err) => refused(&oidc, &err),
    }
}

fn sep(detail: &str) -> &'static str {
    if detail.is_empty() { "" } else { ": " }
}

/// Asks a new learner for the join code of their classroom.
async fn join_form(
    State(state): State<AppState>,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    headers: HeaderMap,
) -> Response {
    let Some(oidc) = enabled(&state) else {
        return crate::web::pages::not_found_response();
    };
    let key = cookies::get(&headers, cookies::OIDC_JOIN).unwrap_or_default();
    let browser = cookies::get(&headers, cookies::OIDC);
    match oidc
        .join_prompt(state.store.pool(), &key, browser.as_deref())
        .await
    {
        Ok(prompt) => JoinPage {
            csrf,
            provider: oidc.settings.name.clone(),
            username: prompt.username,
            code: prompt.code,
            error: None,
        }
        .into_response(),
        Err(err) => refused(&oidc, &err),
    }
}

#[derive(Deserialize)]
struct JoinForm {
    join_code: String,
}

/// Makes the new learner's account in the classroom of the code, signed in.
async fn join_submit(
    State(state): State<AppState>,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    headers: HeaderMap,
    form: Result<Form<JoinForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    // Off: 404 whatever the body, as for a route that does not exist.
    let Some(oidc) = enabled(&state) else {
        return crate::web::pages::not_found_response();
    };
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            return (
                rejection.status(),
                format!("the join form could not be read: {}", rejection.body_text()),
            )
                .into_response();
        }
    };
    let key = cookies::get(&headers, cookies::OIDC_JOIN).unwrap_or_default();
    let browser = cookies::get(&headers, cookies::OIDC);
    let pool = state.store.pool();
    let secure = cookies::is_https(&headers, &state.config.auth);
    let ttl = state.config.auth.lifetimes();
    match oidc
        .join(pool, ttl, &key, browser.as_deref(), &form.join_code)
        .await
    {
        Ok(Outcome::SignedIn { session, next, .. }) => {
            let mut response = Redirect::to(&next).into_response();
            set_session_cookies(response.headers_mut(), &session, secure);
            response.headers_mut().append(
                header::SET_COOKIE,
                cookies::oidc(cookies::OIDC_JOIN, "", secure, 0),
            );
            response
        }
        Ok(Outcome::NeedsJoinCode { .. }) | Err(OidcError::UnknownState) => {
            refused(&oidc, &OidcError::UnknownState)
        }
        // A wrong or closed code: the same page again, to correct it.
        Err(err) => match oidc.join_prompt(pool, &key, browser.as_deref()).await {
            Ok(prompt) => (
                status(&err),
                JoinPage {
                    csrf,
                    provider: oidc.settings.name.clone(),
                    username: prompt.username,
                    code: form.join_code,
                    error: Some(message(&err)),
                },
            )
                .into_response(),
            Err(_) => refused(&oidc, &err),
        },
    }
}
