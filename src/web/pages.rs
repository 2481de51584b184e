//! Server-rendered pages that are not lessons: the home page and 404.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::AppState;
use crate::course::SectionSummary;
use crate::sandbox::BackendHealth;
use crate::web::identity::MaybeUser;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    sections: Vec<SectionSummary>,
    sandbox: BackendHealth,
    signed_in: bool,
}

/// Anyone may read the home page; the sandbox panel is for signed-in people
/// (its API answers 401 to nobody, which would send them to sign in).
async fn home(State(state): State<AppState>, user: MaybeUser) -> HomePage {
    HomePage {
        sections: state.course.sections.clone(),
        sandbox: state.sandbox.health().await,
        signed_in: user.0.is_some(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "not_found.html")]
struct NotFoundPage;

pub async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, NotFoundPage)
}

/// The 404 page, for handlers that find nothing at a valid-looking address.
pub fn not_found_response() -> axum::response::Response {
    (StatusCode::NOT_FOUND, NotFoundPage).into_response()
}
