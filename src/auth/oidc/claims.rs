//! From verified ID token claims to who the person is in pglab: the pair
//! (issuer, subject) that links the account, a username for a new account,
//! the role when an instructor claim is configured, and classrooms named by
//! the classroom claim.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{OidcError, OidcSettings};
use crate::auth::users::{USERNAME_MAX, parse_username};

/// A verified person, as the claims and settings describe them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Person {
    pub issuer: String,
    pub subject: String,
    /// The username a new account starts from (a suffix is added when taken).
    pub username_base: String,
    /// `Some(true)` when the instructor claim holds its value, `Some(false)`
    /// when it does not, `None` when no instructor claim is configured (the
    /// role is then pglab's own business).
    pub instructor: Option<bool>,
    /// Values of the classroom claim (join codes or classroom names).
    pub classrooms: Vec<String>,
}

impl Person {
    /// Reads the claims of a verified ID token (as JSON: `iss`, `sub`, and
    /// every other claim by name).
    pub fn from_claims(settings: &OidcSettings, claims: &Value) -> Result<Self, OidcError> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
        let (Some(issuer), Some(subject)) = (text("iss"), text("sub")) else {
            return Err(OidcError::Claims(
                "the provider's ID token has no issuer or subject".into(),
            ));
        };
        let raw_name = strings(lookup(claims, &settings.username_claim))
            .into_iter()
            .next()
            .ok_or_else(|| {
                OidcError::Claims(format!(
                    "the provider sent no {:?} claim to make a username from; \
                     ask the administrator to set --oidc-username-claim or release that claim",
                    settings.username_claim
                ))
            })?;
        let instructor = settings.instructor.as_ref().map(|(claim, value)| {
            // Some providers send roles as one space-separated string.
            strings(lookup(claims, claim))
                .iter()
                .any(|v| v.split_whitespace().any(|t| t == value))
        });
        let classrooms = settings
            .classroom_claim
            .as_deref()
            .map(|claim| strings(lookup(claims, claim)))
            .unwrap_or_default();
        Ok(Self {
            issuer,
            subject,
            username_base: username_from(&raw_name),
            instructor,
            classrooms,
        })
    }
}

/// The claim at a dotted path (`realm_access.roles`); a claim whose own name
/// has dots (`https://example.org/roles`) is found first.
pub fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.')
        .try_fold(claims, |value, part| value.get(part))
}

/// A claim's strings: a string, or the strings (and numbers) of a list.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_string()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

/// A valid pglab username made from a claim: an e-mail's domain dropped,
/// characters pglab does not allow replaced by `-`, cut to leave room for a
/// `-NN` suffix; `user` when nothing usable is left.
pub fn username_from(raw: &str) -> String {
    let local = raw.trim().split('@').next().unwrap_or_default();
    let mapped: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let cut: String = trimmed.chars().take(USERNAME_MAX - 4).collect();
    let cut = cut.trim_end_matches('-').to_string();
    match parse_username(&cut) {
        Ok(name) => name,
        Err(_) => "user".into(),
    }
}

/// The `n`th candidate username: the base, then `base-2`, `base-3`...
pub fn candidate(base: &str, n: usize) -> String {
    if n <= 1 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> OidcSettings {
        OidcSettings {
            issuer: "https://id.example".into(),
            client_id: "pglab".into(),
            client_secret: None,
            name: "Example".into(),
            scopes: vec![],
            username_claim: "preferred_username".into(),
            instructor: Some(("realm_access.roles".into(), "teacher".into())),
            classroom_claim: Some("classes".into()),
        }
    }

    #[test]
    fn usernames_from_claims() {
        assert_eq!(username_from("ada"), "ada");
        assert_eq!(username_from("ada.lovelace@uni.example"), "ada.lovelace");
        assert_eq!(username_from("José Núñez"), "Jos--N--ez");
        assert_eq!(username_from("__x"), "user");
        assert_eq!(username_from("@@"), "user");
        assert_eq!(username_from(&"a".repeat(60)).len(), USERNAME_MAX - 4);
        assert!(parse_username(&candidate(&username_from(&"a".repeat(60)), 99)).is_ok());
    }

    #[test]
    fn roles_and_classrooms_from_claims() {
        let claims = json!({
            "iss": "https://id.example", "sub": "u1", "preferred_username": "grace",
            "realm_access": {"roles": ["x", "teacher"]}, "classes": "ABCD2345"
        });
        let p = Person::from_claims(&settings(), &claims).unwrap();
        assert_eq!(
            (p.username_base.as_str(), p.instructor, p.classrooms),
            ("grace", Some(true), vec!["ABCD2345".to_string()])
        );
        let claims = json!({"iss": "https://id.example", "sub": "u2", "preferred_username": "ada"});
        let p = Person::from_claims(&settings(), &claims).unwrap();
        assert_eq!(p.instructor, Some(false));
        assert!(p.classrooms.is_empty());
        let nameless = json!({"iss": "https://id.example", "sub": "u3"});
        assert!(matches!(
            Person::from_claims(&settings(), &nameless),
            Err(OidcError::Claims(_))
        ));
    }
}
