//! The OpenID provider as pglab talks to it, through the `openidconnect`
//! crate: discovery (endpoints and signing keys, cached for [`CACHE_TTL`]),
//! the authorization URL (state, nonce, PKCE S256), and the code exchange
//! whose ID token is verified before any claim is read.
//!
//! The HTTP client never follows redirects (a provider's redirect could
//! point discovery or the token request anywhere: SSRF) and gives up after
//! [`HTTP_TIMEOUT`], so an unreachable provider is a clear error, not a hang.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError,
    Client, ClientId, ClientSecret, CsrfToken, DiscoveryError, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenResponse,
    reqwest,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use super::{OidcError, OidcSettings};

/// How long discovered endpoints and keys are believed; a token signed by a
/// key we do not know yet (rotation) refreshes them at once anyway.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// Longest wait for any request to the provider.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Every claim beyond the standard ones (groups, roles, classrooms), kept
/// as JSON for [`super::claims`] to read by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

type Tokens = StandardTokenResponse<
    IdTokenFields<
        ExtraClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// `CoreClient` with [`ExtraClaims`], as discovery makes it.
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// An authorization request: the URL and the secrets the callback needs.
pub struct AuthRequest {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The configured provider and its cached metadata.
pub struct Provider {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    scopes: Vec<Scope>,
    http: reqwest::Client,
    cached: Mutex<Option<(Instant, Arc<OidcClient>)>>,
}

impl Provider {
    /// The provider of the settings; nothing is fetched until the first sign-in.
    pub fn new(settings: &OidcSettings) -> Result<Self, String> {
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| format!("--oidc-issuer {:?} is not a URL: {e}", settings.issuer))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(HTTP_TIMEOUT)
            .timeout(HTTP_TIMEOUT)
            .user_agent(concat!("pglab/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make the HTTP client for OpenID Connect: {e}"))?;
        Ok(Self {
            issuer,
            client_id: ClientId::new(settings.client_id.clone()),
            client_secret: settings.client_secret.clone().map(ClientSecret::new),
            scopes: settings.scopes.iter().cloned().map(Scope::new).collect(),
            http,
            cached: Mutex::new(None),
        })
    }

    /// The client made from discovery: cached, or fetched again when stale
    /// or when `fresh` (keys rotated).
    async fn client(&self, fresh: bool) -> Result<Arc<OidcClient>, OidcError> {
        let mut cached = self.cached.lock().await;
        if !fresh
            && let Some((at, client)) = cached.as_ref()
            && at.elapsed() < CACHE_TTL
        {
            return Ok(client.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| discovery_error(&self.issuer, e))?;
        // Basic authentication unless the provider takes the secret only in the body.
        let post_only = metadata
            .token_endpoint_auth_methods_supported()
            .is_some_and(|m| {
                m.contains(&CoreClientAuthMethod::ClientSecretPost)
                    && !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
            });
        let mut client = OidcClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret.clone(),
        );
        if post_only || self.client_secret.is_none() {
            client = client.set_auth_type(AuthType::RequestBody);
        }
        let client = Arc::new(client);
        *cached = Some((Instant::now(), client.clone()));
        Ok(client)
    }

    /// A new authorization request (authorization code flow with PKCE S256).
    pub async fn authorization(&self, redirect_uri: &str) -> Result<AuthRequest, OidcError> {
        let client = self.client(false).await?;
        let redirect = redirect_url(redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_redirect_uri(Cow::Owned(redirect))
            .set_pkce_challenge(challenge);
        for scope in &self.scopes {
            request = request.add_scope(scope.clone());
        }
        let (url, state, nonce) = request.url();
        Ok(AuthRequest {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code and verifies the ID token; returns its claims as JSON.
    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        redirect_uri: &str,
    ) -> Result<Value, OidcError> {
        let client = self.client(false).await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|_| {
                OidcError::Provider("its discovery document names no token endpoint".into())
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .set_redirect_uri(Cow::Owned(redirect_url(redirect_uri)?))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let nonce = Nonce::new(nonce.to_string());
        match verify(&client, &tokens, &nonce) {
            // A key we do not know: the provider may have rotated its keys.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let client = self.client(true).await?;
                verify(&client, &tokens, &nonce).map_err(verification_error)
            }
            other => other.map_err(verification_error),
        }
    }
}

/// The verified claims of the token response's ID token, access-token hash
/// included when the token carries one.
fn verify(
    client: &OidcClient,
    tokens: &Tokens,
    nonce: &Nonce,
) -> Result<Value, ClaimsVerificationError> {
    let id_token = tokens
        .id_token()
        .ok_or_else(|| ClaimsVerificationError::Other("the provider sent no ID token".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, nonce)?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(ClaimsVerificationError::SignatureVerification)?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(ClaimsVerificationError::SignatureVerification)?;
        let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
            .map_err(|e| ClaimsVerificationError::Unsupported(e.to_string()))?;
        if actual != *expected {
            return Err(ClaimsVerificationError::Other(
                "its access-token hash (at_hash) does not match the access token".into(),
            ));
        }
    }
    serde_json::to_value(claims)
        .map_err(|e| ClaimsVerificationError::Other(format!("its claims do not read back: {e}")))
}

fn redirect_url(uri: &str) -> Result<RedirectUrl, OidcError> {
    RedirectUrl::new(uri.to_string())
        .map_err(|e| OidcError::Auth(anyhow::anyhow!("bad redirect URI {uri:?}: {e}").into()))
}

fn discovery_error<E: std::error::Error + 'static>(
    issuer: &IssuerUrl,
    err: DiscoveryError<E>,
) -> OidcError {
    let detail = match &err {
        DiscoveryError::Request(e) => format!("{} did not answer ({})", issuer.as_str(), chain(e)),
        DiscoveryError::Response(status, _, _) => format!(
            "{}/.well-known/openid-configuration answered HTTP {status}",
            issuer.as_str().trim_end_matches('/')
        ),
        DiscoveryError::Validation(e) => {
            format!("its discovery document does not fit --oidc-issuer: {e}")
        }
        DiscoveryError::Parse(e) => format!("its discovery document is not valid: {e}"),
        other => chain(other),
    };
    tracing::warn!(issuer = issuer.as_str(), %detail, "OpenID Connect discovery failed");
    OidcError::Unreachable(detail)
}

fn token_error<RE: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    err: RequestTokenError<RE, T>,
) -> OidcError {
    let error = match err {
        RequestTokenError::ServerResponse(e) => {
            OidcError::Provider(format!("the sign-in code was not accepted ({e})"))
        }
        RequestTokenError::Request(e) => {
            OidcError::Unreachable(format!("its token endpoint did not answer ({})", chain(&e)))
        }
        RequestTokenError::Parse(e, _) => {
            OidcError::Provider(format!("its token response is not valid: {e}"))
        }
        RequestTokenError::Other(e) => OidcError::Provider(e),
    };
    tracing::warn!(%error, "OpenID Connect code exchange failed");
    error
}

/// The refusal of an ID token, saying which check failed.
fn verification_error(err: ClaimsVerificationError) -> OidcError {
    let why = match &err {
        ClaimsVerificationError::InvalidAudience(_) => {
            "it was issued for another application (wrong audience)".to_string()
        }
        ClaimsVerificationError::Expired(_) => {
            "it has expired (if this keeps happening, check this server's clock)".to_string()
        }
        ClaimsVerificationError::SignatureVerification(e) => {
            format!("its signature does not verify against the provider's keys ({e})")
        }
        ClaimsVerificationError::InvalidIssuer(_) => {
            "it comes from another issuer than the one configured".to_string()
        }
        ClaimsVerificationError::InvalidNonce(_) => {
            "it does not belong to this sign-in (nonce mismatch)".to_string()
        }
        other => other.to_string(),
    };
    tracing::warn!(error = %err, "OpenID Connect ID token refused");
    OidcError::Token(why)
}

/// An error and its sources on one line ("error sending request: connection refused").
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}
