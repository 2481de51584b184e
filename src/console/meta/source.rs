//! `\sf[+] FUNCTION` and `\sv[+] VIEW`: the definition as psql prints it
//! (`pg_get_functiondef`; `CREATE OR REPLACE VIEW ... AS` around
//! `pg_get_viewdef`), with line numbers for `+` (header lines unnumbered
//! for functions, as psql does).

use super::patterns::literal;
use super::{MetaOut, fetch, meta_error};
use crate::console::run::Conn;

/// `\sf NAME` or `\sf NAME(argtypes)`.
pub async fn function(c: &mut Conn, target: &str, numbered: bool) -> MetaOut {
    if target.trim().is_empty() {
        return meta_error("function name is required".into());
    }
    let cast = if target.contains('(') {
        "regprocedure"
    } else {
        "regproc"
    };
    let sql = format!(
        "SELECT pg_catalog.pg_get_functiondef({}::pg_catalog.{cast}::pg_catalog.oid)",
        literal(target.trim())
    );
    let rows = match fetch(c, &sql).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    let def = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default();
    MetaOut::text(number(&def, numbered, true))
}

/// `\sv NAME`.
pub async fn view(c: &mut Conn, target: &str, numbered: bool) -> MetaOut {
    if target.trim().is_empty() {
        return meta_error("view name is required".into());
    }
    let sql = format!(
        "SELECT pg_catalog.quote_ident(n.nspname), pg_catalog.quote_ident(c.relname), c.relkind::text, \
           pg_catalog.pg_get_viewdef(c.oid, true), \
           (SELECT pg_catalog.string_agg(pg_catalog.split_part(o, '=', 1) || '=' || \
                     pg_catalog.quote_literal(pg_catalog.substr(o, pg_catalog.strpos(o, '=') + 1)), ', ') \
              FROM pg_catalog.unnest(c.reloptions) o \
             WHERE o NOT IN ('check_option=local', 'check_option=cascaded')), \
           CASE WHEN 'check_option=local' = ANY (c.reloptions) THEN 'LOCAL' \
                WHEN 'check_option=cascaded' = ANY (c.reloptions) THEN 'CASCADED' END \
         FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid \
         WHERE c.oid = {}::pg_catalog.regclass",
        literal(target.trim())
    );
    let rows = match fetch(c, &sql).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(r) = rows.first() else {
        return meta_error(format!("relation \"{target}\" does not exist"));
    };
    let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
    if get(2) != "v" {
        return meta_error(format!("\"{}.{}\" is not a view", get(0), get(1)));
    }
    let mut out = format!("CREATE OR REPLACE VIEW {}.{}", get(0), get(1));
    if !get(4).is_empty() {
        out.push_str(&format!("\n WITH ({})", get(4)));
    }
    out.push_str(" AS\n");
    let def = get(3);
    out.push_str(def.trim_end().trim_end_matches(';'));
    if !get(5).is_empty() {
        out.push_str(&format!("\n WITH {} CHECK OPTION", get(5)));
    }
    MetaOut::text(number(&out, numbered, false))
}

/// The text without its final newline; with `numbered`, each body line
/// prefixed by its number as psql's `\sf+` does.
fn number(def: &str, numbered: bool, function: bool) -> String {
    let def = def.strip_suffix('\n').unwrap_or(def);
    if !numbered {
        return def.to_string();
    }
    let mut in_header = function;
    let mut n = 0;
    let mut out = Vec::new();
    for line in def.split('\n') {
        if in_header
            && (line.starts_with("AS ")
                || line.starts_with("BEGIN ")
                || line.starts_with("RETURN "))
        {
            in_header = false;
        }
        if in_header {
            out.push(format!("        {line}"));
        } else {
            n += 1;
            out.push(format!("{n:<7} {line}"));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn numbers_body_lines_like_psql() {
        let def = "CREATE FUNCTION f()\n RETURNS int\nAS $$\nselect 1\n$$\n";
        assert_eq!(
            number(def, true, true),
            "        CREATE FUNCTION f()\n         RETURNS int\n1       AS $$\n2       select 1\n3       $$"
        );
    }
}
