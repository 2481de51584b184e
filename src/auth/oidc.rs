//! Single sign-on through OpenID Connect (optional, off by default).
//!
//! The flow, one step per file:
//! 1. [`provider`]: discovery of the issuer's endpoints and keys (cached for
//!    a few minutes), the authorization URL with state, nonce and a PKCE
//!    challenge, then the code exchange and the ID token's verification
//!    (signature against the provider's JWKS, issuer, audience, expiry, nonce,
//!    access-token hash) by the `openidconnect` crate.
//! 2. [`pending`]: what a sign-in under way needs between the redirect and the
//!    callback, kept server-side, bound to the browser that started it, and
//!    used once; so a replayed or forged state is refused.
//! 3. [`claims`]: the verified claims mapped to a username, a role and
//!    classrooms, as configured.
//! 4. [`accounts`]: the account linked to the issuer and subject, made on the
//!    first sign-in (a learner with no classroom claim is asked for a join
//!    code first), then a session exactly like a password sign-in's.
//!
//! Nothing here knows HTTP beyond the provider's; `web::auth::oidc` is thin
//! over [`Oidc`].

pub mod accounts;
pub mod claims;
pub mod config;
pub mod pending;
pub mod provider;

use sqlx::SqlitePool;

pub use config::{OidcConfig, OidcSettings};

use super::sessions::NewSession;
use super::users::User;
use super::{AuthError, token};

/// A refusal of an OpenID Connect sign-in, worded for the person signing in
/// (and for the administrator reading the log).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Discovery, keys or the token endpoint did not answer usably.
    #[error("the sign-in provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider answered with an error (the person cancelled, the code
    /// was refused).
    #[error("the sign-in provider refused: {0}")]
    Provider(String),
    /// The state is unknown, expired, used already, or from another browser.
    #[error(
        "this sign-in is unknown, has expired or was already used; start again from the sign-in page"
    )]
    UnknownState,
    /// The ID token failed verification.
    #[error("the provider's ID token was refused: {0}")]
    Token(String),
    /// The verified claims cannot make an account (no username claim...).
    #[error("{0}")]
    Claims(String),
    /// An accounts refusal (wrong join code, closed classroom...).
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<sqlx::Error> for OidcError {
    fn from(err: sqlx::Error) -> Self {
        Self::Auth(err.into())
    }
}

/// OpenID Connect sign-in as configured: the checked settings and the
/// provider's cached metadata.
pub struct Oidc {
    /// The checked settings.
    pub settings: OidcSettings,
    provider: provider::Provider,
}

/// Where a completed callback leaves the person.
pub enum Outcome {
    /// Signed in: a new session, and where to go.
    SignedIn {
        user: User,
        session: NewSession,
        next: String,
    },
    /// A new learner the claims put in no classroom: ask for a join code,
    /// then [`Oidc::join`] with this key.
    NeedsJoinCode { join_key: String },
}

/// What the join-code page shows.
pub struct JoinPrompt {
    /// The username the account will get.
    pub username: String,
    /// A join code from the sign-up link, to fill in.
    pub code: String,
}

impl Oidc {
    /// OpenID Connect from the settings, or `None` when it is off.
    pub fn from_config(config: &OidcConfig) -> Result<Option<Self>, String> {
        let Some(settings) = config.check()? else {
            return Ok(None);
        };
        let provider = provider::Provider::new(&settings)?;
        Ok(Some(Self { settings, provider }))
    }

    /// Starts a sign-in: the provider's authorization URL to send the browser
    /// to. `browser_key` is the value of the browser's `pglab_oidc` cookie
    /// (made by the caller when it had none); `code` is a join code from a
    /// sign-up link.
    pub async fn start(
        &self,
        pool: &SqlitePool,
        redirect_uri: &str,
        browser_key: &str,
        next: &str,
        code: Option<&str>,
    ) -> Result<String, OidcError> {
        let request = self.provider.authorization(redirect_uri).await?;
        let flow = pending::Flow {
            nonce: request.nonce,
            pkce_verifier: request.pkce_verifier,
            redirect_uri: redirect_uri.to_string(),
            next: next.to_string(),
            code: code.map(str::to_string),
        };
        pending::put_flow(pool, &request.state, browser_key, &flow).await?;
        Ok(request.url)
    }

    /// Completes the provider's callback: the state taken (once), the code
    /// exchanged, the ID token verified, then the linked account signed in,
    /// a new one made, or a join code asked for.
    pub async fn finish(
        &self,
        pool: &SqlitePool,
        session_ttl: crate::auth::sessions::Lifetimes,
        state: &str,
        code: &str,
        browser_key: Option<&str>,
    ) -> Result<Outcome, OidcError> {
        let flow = pending::take_flow(pool, state, browser_key).await?;
        let verified = self
            .provider
            .exchange(code, &flow.pkce_verifier, &flow.nonce, &flow.redirect_uri)
            .await?;
        let person = claims::Person::from_claims(&self.settings, &verified)?;
        let browser_key = browser_key.unwrap_or_default();
        accounts::sign_in(pool, session_ttl, person, flow, browser_key).await
    }

    /// The join-code page of a sign-in waiting for one, or `UnknownState`.
    pub async fn join_prompt(
        &self,
        pool: &SqlitePool,
        join_key: &str,
        browser_key: Option<&str>,
    ) -> Result<JoinPrompt, OidcError> {
        let join = pending::peek_join(pool, join_key, browser_key).await?;
        Ok(JoinPrompt {
            username: join.person.username_base.clone(),
            code: join.code.clone().unwrap_or_default(),
        })
    }

    /// Makes the account of a sign-in that waited for a join code, in that
    /// code's classroom, and signs it in. A wrong code leaves the sign-in
    /// waiting, to try again.
    pub async fn join(
        &self,
        pool: &SqlitePool,
        session_ttl: crate::auth::sessions::Lifetimes,
        join_key: &str,
        browser_key: Option<&str>,
        join_code: &str,
    ) -> Result<Outcome, OidcError> {
        accounts::join(pool, session_ttl, join_key, browser_key, join_code).await
    }
}

/// A fresh random key for a browser's `pglab_oidc` cookie or a join.
pub fn new_key() -> String {
    token::generate()
}
