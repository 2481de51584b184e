//! Settings of sign-in: session lifetimes (idle and absolute), HTTPS detection, proxies, rate
//! limits and OpenID Connect. Flattened into `ServeConfig`, so every flag also reads the environment.

use clap::Args;

/// Accounts settings of `pglab serve`.
#[derive(Clone, Debug, Args)]
pub struct AuthConfig {
    /// Idle lifetime of a sign-in session and of a bearer token, in seconds;
    /// every use slides it forward (default 12 hours).
    #[arg(long, env = "PGLAB_SESSION_TTL_SECS", default_value_t = 12 * 3600)]
    pub session_ttl_secs: i64,

    /// Absolute lifetime of a sign-in session and of a bearer token, in
    /// seconds from sign-in, however much it is used (default 7 days).
    #[arg(long, env = "PGLAB_SESSION_MAX_AGE_SECS", default_value_t = 7 * 24 * 3600)]
    pub session_max_age_secs: i64,

    /// The URL learners use to reach this server, e.g. https://pglab.example.org.
    /// Printed in the setup link; an https URL makes every cookie Secure.
    #[arg(long, env = "PGLAB_PUBLIC_URL", value_parser = crate::ops::proxy::parse_public_url)]
    pub public_url: Option<String>,

    /// Believe a reverse proxy's X-Forwarded-Proto and X-Forwarded-For
    /// headers (only behind your own proxy: anyone can send those headers).
    #[arg(
        long,
        env = "PGLAB_TRUST_PROXY",
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true",
        value_parser = crate::settings::parse_switch
    )]
    pub trust_proxy: bool,

    /// Failed sign-ins allowed per account within the window before 429.
    #[arg(long, env = "PGLAB_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 5)]
    pub login_failures_per_account: i64,

    /// Failed sign-ins allowed per client address within the window before 429.
    /// Higher than per account: a whole classroom often shares one address.
    #[arg(long, env = "PGLAB_LOGIN_FAILURES_PER_ADDRESS", default_value_t = 30)]
    pub login_failures_per_address: i64,

    /// The rate-limit window, in seconds.
    #[arg(long, env = "PGLAB_LOGIN_WINDOW_SECS", default_value_t = 300)]
    pub login_window_secs: i64,

    /// Single sign-on through an OpenID provider, and local passwords on or off.
    #[command(flatten)]
    pub oidc: super::oidc::OidcConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 12 * 3600,
            session_max_age_secs: 7 * 24 * 3600,
            public_url: None,
            trust_proxy: false,
            login_failures_per_account: 5,
            login_failures_per_address: 30,
            login_window_secs: 300,
            oidc: Default::default(),
        }
    }
}

impl AuthConfig {
    /// The idle and absolute session lifetimes.
    pub fn lifetimes(&self) -> super::sessions::Lifetimes {
        super::sessions::Lifetimes {
            idle: self.session_ttl_secs,
            absolute: self.session_max_age_secs,
        }
    }

    /// Whether pglab's own passwords may sign in (off with `--no-local-passwords`).
    pub fn local_passwords(&self) -> bool {
        !self.oidc.no_local_passwords
    }

    /// Whether the configured public URL is HTTPS (then cookies are always Secure).
    pub fn public_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
    }
}
