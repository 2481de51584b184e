//! Who is making the request.
//!
//! Handlers take a [`Learner`] argument to act on the signed-in person's own
//! sandbox, sessions and progress, never on an id from the request. Until the
//! accounts issue lands, every request is the development learner; the
//! extractor's shape stays when real sign-in replaces its body.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::sandbox::LearnerId;
use crate::web::AppError;

/// The signed-in person making the request.
#[derive(Clone, Debug)]
pub struct Learner {
    pub id: LearnerId,
    pub username: String,
}

impl FromRequestParts<AppState> for Learner {
    type Rejection = AppError;

    async fn from_request_parts(
        _parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (id, username) = state.store.development_learner().await?;
        Ok(Self { id, username })
    }
}
