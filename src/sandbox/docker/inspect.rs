//! `docker inspect` of the learner's own container, as the engine says it
//! (`[ {...} ]`, the CLI's shape, so that `.[0].Mounts` works), with every
//! secret redacted: the value of each `*PASSWORD*` variable and the
//! sandbox password wherever it appears.

use serde_json::{Value, json};

use super::DockerProvisioner;
use super::engine::{Engine, Found};
use crate::sandbox::{LearnerId, SandboxError};

/// What a redacted secret reads as.
pub const REDACTED: &str = "<redacted>";

impl DockerProvisioner {
    pub(super) async fn inspect_container(
        &self,
        learner: LearnerId,
    ) -> Result<Value, SandboxError> {
        let Some(record) = self.records.get(learner).await? else {
            return Err(SandboxError::Failed(
                "your sandbox has no container yet: start it first".into(),
            ));
        };
        inspect_redacted(&self.engine, &record.container, &record.password).await
    }
}

/// `docker inspect` of one container on the engine that runs it (the
/// Docker backend's own, or a swarm node's), redacted, in the CLI's shape.
pub(in crate::sandbox) async fn inspect_redacted(
    engine: &Engine,
    container: &str,
    password: &str,
) -> Result<Value, SandboxError> {
    let Found::Yes(info) = engine.inspect(container).await? else {
        return Err(SandboxError::Failed(
            "your sandbox has no container now: start it first".into(),
        ));
    };
    let mut value = serde_json::to_value(info)
        .map_err(|e| SandboxError::Failed(format!("cannot read the engine's answer: {e}")))?;
    redact(&mut value, &[password]);
    Ok(json!([value]))
}

/// Replaces secrets in place: `NAME=value` strings whose NAME contains
/// PASSWORD (any case) keep only their name, and any of `secrets` found in
/// any string is replaced.
pub fn redact(value: &mut Value, secrets: &[&str]) {
    match value {
        Value::String(s) => {
            if let Some((name, _)) = s.split_once('=')
                && name.to_ascii_uppercase().contains("PASSWORD")
            {
                *s = format!("{name}={REDACTED}");
            }
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                if s.contains(secret) {
                    *s = s.replace(secret, REDACTED);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, secrets)),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key.to_ascii_uppercase().contains("PASSWORD") && v.is_string() {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact(v, secrets);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_everywhere() {
        let mut v = json!({"Config": {"Env": ["POSTGRES_PASSWORD=s3cret", "PGDATA=/d", "MY_Password=x"],
            "Cmd": ["postgres", "-c", "x=s3cret"]}, "Password": "y"});
        redact(&mut v, &["s3cret"]);
        let text = v.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("POSTGRES_PASSWORD=<redacted>"));
        assert!(text.contains("MY_Password=<redacted>"));
        assert!(text.contains("PGDATA=/d"));
        assert_eq!(v["Password"], "<redacted>");
    }
}
