//! Bulk creation of learners from CSV (`username[,password]` per line), for
//! the instructor's upload and `pglab user import`.
//!
//! All or nothing: every line is checked first (syntax, duplicates in the
//! file, names already taken) and any problem refuses the whole file with
//! line numbers, so a corrected file can simply be uploaded again.

use serde::Serialize;
use sqlx::SqlitePool;

use super::users::{self, Role};
use super::{AuthError, classrooms, password};

/// One created learner; `password` is set when it was generated here, to hand out.
#[derive(Clone, Debug, Serialize)]
pub struct Created {
    pub id: i64,
    pub username: String,
    pub password: Option<String>,
}

/// Parsed lines: `(line number, username, password if given)`.
pub fn parse(csv: &str) -> Result<Vec<(usize, String, Option<String>)>, AuthError> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in csv.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The password is everything after the first comma, so it may hold commas.
        let (name, pass) = match line.split_once([',', ';', '\t']) {
            Some((n, p)) => (n.trim(), Some(p.trim()).filter(|p| !p.is_empty())),
            None => (line, None),
        };
        let name = name.trim_matches('"');
        if line_no == 1 && name.eq_ignore_ascii_case("username") {
            continue; // a header line
        }
        match users::parse_username(name) {
            Ok(name) => {
                if let Some(p) = pass
                    && let Err(e) = password::validate(p)
                {
                    errors.push(format!("line {line_no}: {e}"));
                }
                rows.push((line_no, name, pass.map(str::to_string)));
            }
            Err(e) => errors.push(format!("line {line_no}: {e}")),
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (line_no, name, _) in &rows {
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), *line_no) {
            errors.push(format!(
                "line {line_no}: {name} already appears on line {first}"
            ));
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push("the file has no usernames (one per line: username[,password])".into());
    }
    if !errors.is_empty() {
        return Err(AuthError::Invalid(errors.join("; ")));
    }
    Ok(rows)
}

/// Creates the learners of `csv` in `classroom`, generating missing passwords.
pub async fn import(
    pool: &SqlitePool,
    classroom: i64,
    csv: &str,
) -> Result<Vec<Created>, AuthError> {
    classrooms::get(pool, classroom).await?;
    let rows = parse(csv)?;
    let mut taken = Vec::new();
    for (line_no, name, _) in &rows {
        if users::with_hash(pool, name).await?.is_some() {
            taken.push(format!("line {line_no}: the username {name} is taken"));
        }
    }
    if !taken.is_empty() {
        return Err(AuthError::Taken(taken.join("; ")));
    }
    // Hash first (slow, off the runtime), then insert everything in one transaction.
    let mut hashed = Vec::with_capacity(rows.len());
    for (_, name, pass) in rows {
        let (pass, generated) = match pass {
            Some(p) => (p, false),
            None => (password::generate(), true),
        };
        let phc = password::hash(pass.clone()).await?;
        hashed.push((name, phc, generated.then_some(pass)));
    }
    let mut tx = pool.begin().await?;
    let mut created = Vec::with_capacity(hashed.len());
    for (name, phc, generated) in hashed {
        let user = users::insert_hashed(&mut tx, &name, &phc, Role::Learner).await?;
        classrooms::add_member(&mut tx, classroom, user.id).await?;
        created.push(Created {
            id: user.id,
            username: user.username,
            password: generated,
        });
    }
    tx.commit().await?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_optional_passwords() {
        let rows =
            parse("username,password\nada\n\nbob, secret,with,commas \n# comment\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], (2, "ada".into(), None));
        assert_eq!(
            rows[1],
            (4, "bob".into(), Some("secret,with,commas".into()))
        );
    }

    #[test]
    fn refuses_bad_lines_with_their_numbers() {
        let err = parse("ada\nb ob\nada\ncy,short").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(
            err.contains("line 3: ada already appears on line 1"),
            "{err}"
        );
        assert!(err.contains("line 4: the password"), "{err}");
        assert!(parse("\n\n").is_err());
    }
}
