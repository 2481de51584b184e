//! Settings of OpenID Connect sign-in. Flattened into `AuthConfig`, so every
//! flag also reads the environment. All off unless `--oidc-issuer` is set.

use clap::Args;

use crate::settings::{Secret, SecretFileError};

/// OpenID Connect settings of `pglab serve`.
#[derive(Clone, Debug, Args)]
pub struct OidcConfig {
    /// Issuer URL of an OpenID provider (e.g. https://login.example.edu/realms/uni);
    /// its `/.well-known/openid-configuration` is read at the first sign-in.
    /// Unset: no single sign-on.
    #[arg(long, env = "PGLAB_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The client id pglab is registered with at the provider.
    #[arg(long, env = "PGLAB_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// The client secret (unset: a public client, PKCE only).
    #[arg(long, env = "PGLAB_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<Secret>,

    /// A file holding the client secret (a Docker secret, e.g.
    /// /run/secrets/pglab_oidc_client_secret), read at start-up; instead of
    /// --oidc-client-secret.
    #[arg(
        long,
        env = "PGLAB_OIDC_CLIENT_SECRET_FILE",
        conflicts_with = "oidc_client_secret"
    )]
    pub oidc_client_secret_file: Option<std::path::PathBuf>,

    /// Name on the sign-in button, "Sign in with NAME" (default: the issuer's host).
    #[arg(long, env = "PGLAB_OIDC_NAME")]
    pub oidc_name: Option<String>,

    /// Scopes asked for besides `openid`, comma-separated (add the one that
    /// releases the group or role claim, e.g. `groups`).
    #[arg(
        long,
        env = "PGLAB_OIDC_SCOPES",
        value_delimiter = ',',
        default_value = "profile"
    )]
    pub oidc_scopes: Vec<String>,

    /// ID token claim that becomes a new account's username.
    #[arg(
        long,
        env = "PGLAB_OIDC_USERNAME_CLAIM",
        default_value = "preferred_username"
    )]
    pub oidc_username_claim: String,

    /// ID token claim (a string or a list; dots reach into objects, e.g.
    /// `realm_access.roles`) that makes instructors: those whose claim holds
    /// `--oidc-instructor-value`. With it, the role follows the provider at
    /// every sign-in.
    #[arg(long, env = "PGLAB_OIDC_INSTRUCTOR_CLAIM")]
    pub oidc_instructor_claim: Option<String>,

    /// The value of `--oidc-instructor-claim` that makes an instructor.
    #[arg(long, env = "PGLAB_OIDC_INSTRUCTOR_VALUE")]
    pub oidc_instructor_value: Option<String>,

    /// ID token claim naming learners' classrooms (a join code or a classroom
    /// name, or a list of them). Without it, or when it names none, a new
    /// learner is asked for a join code after signing in.
    #[arg(long, env = "PGLAB_OIDC_CLASSROOM_CLAIM")]
    pub oidc_classroom_claim: Option<String>,

    /// Accept an `http://` issuer that is not on loopback (never in production:
    /// tokens would cross the network in clear).
    #[arg(
        long,
        env = "PGLAB_OIDC_ALLOW_HTTP",
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true",
        value_parser = crate::settings::parse_switch
    )]
    pub oidc_allow_http: bool,

    /// Turn pglab's own passwords off: sign-in, sign-up and the setup link
    /// then go through the OpenID provider only (needs `--oidc-issuer`).
    #[arg(
        long,
        env = "PGLAB_NO_LOCAL_PASSWORDS",
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true",
        value_parser = crate::settings::parse_switch
    )]
    pub no_local_passwords: bool,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_client_secret_file: None,
            oidc_name: None,
            oidc_scopes: vec!["profile".into()],
            oidc_username_claim: "preferred_username".into(),
            oidc_instructor_claim: None,
            oidc_instructor_value: None,
            oidc_classroom_claim: None,
            oidc_allow_http: false,
            no_local_passwords: false,
        }
    }
}

/// Checked OpenID Connect settings: what the sign-in flow works from.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub name: String,
    pub scopes: Vec<String>,
    pub username_claim: String,
    /// Claim and value that make an instructor.
    pub instructor: Option<(String, String)>,
    pub classroom_claim: Option<String>,
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl OidcConfig {
    /// Reads `--oidc-client-secret-file` into the client secret.
    pub fn read_secret_file(&mut self) -> Result<(), SecretFileError> {
        if let Some(path) = &self.oidc_client_secret_file {
            self.oidc_client_secret = Some(Secret::from_file(path)?);
        }
        Ok(())
    }

    /// The checked settings, `None` when OpenID Connect is off, or what is
    /// wrong worded for the person starting pglab.
    pub fn check(&self) -> Result<Option<OidcSettings>, String> {
        let Some(issuer) = set(&self.oidc_issuer) else {
            if self.no_local_passwords {
                return Err(
                    "--no-local-passwords needs --oidc-issuer (or PGLAB_OIDC_ISSUER): \
                            without local passwords nobody could sign in"
                        .into(),
                );
            }
            return Ok(None);
        };
        // Kept as written: the provider's `iss` must equal it to the byte.
        let issuer = issuer.to_string();
        let url = url_parts(&issuer)
            .ok_or_else(|| format!("--oidc-issuer {issuer:?} is not an http(s) URL with a host"))?;
        if url.0 == "http" && !is_loopback(&url.1) && !self.oidc_allow_http {
            return Err(format!(
                "--oidc-issuer {issuer} is plain http on a host that is not loopback: \
                 use https, or pass --oidc-allow-http for a test provider"
            ));
        }
        let client_id = set(&self.oidc_client_id)
            .ok_or("--oidc-issuer needs --oidc-client-id (or PGLAB_OIDC_CLIENT_ID)")?
            .to_string();
        let instructor = match (
            set(&self.oidc_instructor_claim),
            set(&self.oidc_instructor_value),
        ) {
            (Some(c), Some(v)) => Some((c.to_string(), v.to_string())),
            (None, None) => None,
            _ => {
                return Err(
                    "--oidc-instructor-claim and --oidc-instructor-value go together".into(),
                );
            }
        };
        let username_claim = self.oidc_username_claim.trim();
        if username_claim.is_empty() {
            return Err("--oidc-username-claim must name a claim".into());
        }
        Ok(Some(OidcSettings {
            name: set(&self.oidc_name).unwrap_or(&url.1).to_string(),
            issuer,
            client_id,
            client_secret: self
                .oidc_client_secret
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| s.expose().to_string()),
            scopes: self
                .oidc_scopes
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s != "openid")
                .collect(),
            username_claim: username_claim.to_string(),
            instructor,
            classroom_claim: set(&self.oidc_classroom_claim).map(str::to_string),
        }))
    }
}

/// `(scheme, host)` of an http(s) URL, lowercased.
fn url_parts(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?.to_string()
    } else {
        authority.split(':').next()?.to_string()
    };
    (!host.is_empty()).then(|| (scheme, host.to_ascii_lowercase()))
}

/// Whether `host` is this machine: `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: &str) -> OidcConfig {
        OidcConfig {
            oidc_issuer: Some(issuer.into()),
            oidc_client_id: Some("pglab".into()),
            ..Default::default()
        }
    }

    #[test]
    fn off_unless_an_issuer_is_set() {
        assert!(OidcConfig::default().check().unwrap().is_none());
        let no_passwords = OidcConfig {
            no_local_passwords: true,
            ..Default::default()
        };
        assert!(no_passwords.check().is_err());
    }

    #[test]
    fn plain_http_only_on_loopback_or_when_allowed() {
        for ok in [
            "https://login.example.edu/realms/uni",
            "http://127.0.0.1:4000",
            "http://localhost:4000/",
            "http://[::1]:4000",
        ] {
            assert!(config(ok).check().is_ok(), "{ok}");
        }
        assert!(config("http://login.example.edu").check().is_err());
        assert!(config("http://127.0.0.1.evil.example").check().is_err());
        assert!(config("ftp://login.example.edu").check().is_err());
        let mut allowed = config("http://login.example.edu");
        allowed.oidc_allow_http = true;
        assert!(allowed.check().is_ok());
    }

    #[test]
    fn instructor_claim_needs_its_value_and_name_defaults_to_host() {
        let mut c = config("https://login.example.edu/");
        let s = c.check().unwrap().unwrap();
        assert_eq!(s.name, "login.example.edu");
        assert_eq!(s.issuer, "https://login.example.edu/");
        c.oidc_instructor_claim = Some("groups".into());
        assert!(c.check().is_err());
        c.oidc_instructor_value = Some("teachers".into());
        assert_eq!(
            c.check().unwrap().unwrap().instructor,
            Some(("groups".into(), "teachers".into()))
        );
    }
}
