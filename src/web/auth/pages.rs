//! Sign-in pages: `/login`, `/signup`, `/logout` (POST) and the first
//! instructor's `/setup/{token}`. Plain HTML forms that work without
//! JavaScript; each carries the CSRF value in a hidden `csrf_token` field.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::{
    ClientAddr, CsrfToken, cookies, message_of, passwords_off, safe_next, set_session_cookies,
    status_of,
};
use crate::app::AppState;
use crate::auth::sessions::{self, Kind, NewSession};
use crate::auth::users::{self, Role};
use crate::auth::{AuthError, classrooms, setup, signin};
use crate::web::identity::{CurrentSession, MaybeUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login_submit))
        .route("/signup", get(signup_form).post(signup_submit))
        .route("/logout", axum::routing::post(logout))
        .route("/setup/{token}", get(setup_form).post(setup_submit))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    next: Option<String>,
    code: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    username: String,
    error: Option<String>,
    /// The OpenID provider's name, when single sign-on is on.
    oidc: Option<String>,
    /// Whether pglab's own passwords may sign in.
    passwords: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/signup.html")]
struct SignupPage {
    csrf: String,
    next: String,
    code: String,
    username: String,
    error: Option<String>,
    oidc: Option<String>,
    passwords: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/setup.html")]
struct SetupPage {
    csrf: String,
    token: String,
    username: String,
    error: Option<String>,
}

/// A page with a title and one paragraph (also the OpenID Connect refusals).
#[derive(Template, WebTemplate)]
#[template(path = "auth/message.html")]
pub(super) struct MessagePage {
    pub(super) title: String,
    pub(super) text: String,
}

/// The provider's name when single sign-on is on, and whether passwords are.
fn sign_in_options(state: &AppState) -> (Option<String>, bool) {
    (
        state.oidc.as_ref().map(|o| o.settings.name.clone()),
        state.config.auth.local_passwords(),
    )
}

/// A redirect after signing in, with the new session's cookies.
fn signed_in(to: &str, session: &NewSession, headers: &HeaderMap, state: &AppState) -> Response {
    let mut response = Redirect::to(to).into_response();
    let secure = cookies::is_https(headers, &state.config.auth);
    set_session_cookies(response.headers_mut(), session, secure);
    response
}

async fn login_form(
    State(state): State<AppState>,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    MaybeUser(user): MaybeUser,
    Query(q): Query<PageQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if user.is_some() {
        return Redirect::to(&next).into_response();
    }
    let (oidc, passwords) = sign_in_options(&state);
    LoginPage {
        csrf,
        next,
        username: String::new(),
        error: None,
        oidc,
        passwords,
    }
    .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let result = match passwords_off(&state) {
        Some(refusal) => Err(refusal),
        None => {
            signin::sign_in(
                state.store.pool(),
                &state.config.auth,
                &form.username,
                &form.password,
                &addr,
                Kind::Cookie,
            )
            .await
        }
    };
    let (oidc, passwords) = sign_in_options(&state);
    match result {
        Ok((_, session)) => signed_in(&next, &session, &headers, &state),
        Err(err) => (
            status_of(&err),
            LoginPage {
                csrf,
                next,
                username: form.username,
                error: Some(message_of(&err)),
                oidc,
                passwords,
            },
        )
            .into_response(),
    }
}

async fn signup_form(
    State(state): State<AppState>,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    Query(q): Query<PageQuery>,
) -> SignupPage {
    let (oidc, passwords) = sign_in_options(&state);
    SignupPage {
        oidc,
        passwords,
        csrf,
        next: safe_next(q.next.as_deref()),
        code: q
            .code
            .map(|c| classrooms::normalize_code(&c))
            .unwrap_or_default(),
        username: String::new(),
        error: None,
    }
}

#[derive(Deserialize)]
struct SignupForm {
    join_code: String,
    username: String,
    password: String,
    next: Option<String>,
}

async fn signup_submit(
    State(state): State<AppState>,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    headers: HeaderMap,
    Form(form): Form<SignupForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let pool = state.store.pool();
    let result: Result<NewSession, AuthError> = async {
        if let Some(refusal) = passwords_off(&state) {
            return Err(refusal);
        }
        let classroom = classrooms::by_open_code(pool, &form.join_code).await?;
        let user = users::create(
            pool,
            &form.username,
            &form.password,
            Role::Learner,
            Some(classroom.id),
        )
        .await?;
        tracing::info!(user = %user.username, classroom = classroom.id, "learner signed up");
        sessions::create(pool, user.id, Kind::Cookie, state.config.auth.lifetimes()).await
    }
    .await;
    match result {
        Ok(session) => signed_in(&next, &session, &headers, &state),
        Err(err) => (
            status_of(&err),
            SignupPage {
                oidc: sign_in_options(&state).0,
                passwords: state.config.auth.local_passwords(),
                csrf,
                next,
                code: classrooms::normalize_code(&form.join_code),
                username: form.username,
                error: Some(message_of(&err)),
            },
        )
            .into_response(),
    }
}

/// Ends the browser session server-side and clears its cookie.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(CurrentSession(session)): Extension<CurrentSession>,
) -> Response {
    if let Some(s) = session {
        if let Err(err) = sessions::delete(state.store.pool(), s.id).await {
            return (status_of(&err), message_of(&err)).into_response();
        }
        // Signed out, a learner leaves the line of a full classroom.
        state.sandbox.admission().cancel(s.user.id);
        tracing::info!(user = %s.user.username, "signed out");
    }
    let mut response = Redirect::to("/").into_response();
    let secure = cookies::is_https(&headers, &state.config.auth);
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookies::clear_session(secure));
    response
}

fn setup_gone() -> Response {
    (
        StatusCode::GONE,
        MessagePage {
            title: "This setup link no longer works".into(),
            text: "It was already used, has expired, or an instructor exists. Sign in, or restart pglab with an empty store for a new link.".into(),
        },
    )
        .into_response()
}

async fn setup_form(
    State(state): State<AppState>,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    Path(token): Path<String>,
) -> Response {
    if !state.config.auth.local_passwords() {
        return setup_gone();
    }
    match setup::is_valid(state.store.pool(), &token).await {
        Ok(true) => SetupPage {
            csrf,
            token,
            username: String::new(),
            error: None,
        }
        .into_response(),
        Ok(false) => setup_gone(),
        Err(err) => (status_of(&err), message_of(&err)).into_response(),
    }
}

#[derive(Deserialize)]
struct SetupForm {
    username: String,
    password: String,
}

async fn setup_submit(
    State(state): State<AppState>,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    let pool = state.store.pool();
    if !state.config.auth.local_passwords() {
        return setup_gone();
    }
    let result = async {
        let user = setup::complete(pool, &token, &form.username, &form.password).await?;
        sessions::create(pool, user.id, Kind::Cookie, state.config.auth.lifetimes()).await
    }
    .await;
    match result {
        Ok(session) => signed_in("/instructor", &session, &headers, &state),
        Err(AuthError::Refused(_)) => setup_gone(),
        Err(err) => (
            status_of(&err),
            SetupPage {
                csrf,
                token,
                username: form.username,
                error: Some(message_of(&err)),
            },
        )
            .into_response(),
    }
}
