//! `\watch [SECONDS]` as psql 15 has it: the query buffer (the query on
//! the same line, or the previous one) runs again every SECONDS (default
//! 2; psql 15 takes `strtod`'s reading of the argument, and 0, a negative
//! or an unreadable interval as 1), each result under psql's title line
//! `Thu Dec  3 15:04:05 2026 (every 2s)` (`strftime("%c")` in the C
//! locale, the time in the session's TimeZone). It stops at the first
//! error, when the learner cancels the run (the cancel route, Escape), or,
//! unlike psql, after [`MAX_RUNS`] runs; only the last [`KEEP`] results are
//! sent, so a runaway watch cannot flood the session. The session runs the
//! loop (`session.rs`); this module holds psql's rules.

use std::time::Duration;

/// Most runs of one `\watch`.
pub const MAX_RUNS: usize = 1000;
/// Results of a `\watch` kept for the answer (the latest ones).
pub const KEEP: usize = 20;

/// The time for the title, as `strftime("%c")` prints it in the C locale
/// (`%a %b %e %H:%M:%S %Y`), read from the server in the session's
/// TimeZone.
pub const TIMESTAMP_SQL: &str = "select to_char(t, 'Dy Mon ') || lpad(extract(day from t)::int::text, 2) || to_char(t, ' HH24:MI:SS YYYY') from (select clock_timestamp() as t) c";

/// The interval psql 15 takes from `\watch`'s argument.
pub fn interval(arg: Option<&str>) -> f64 {
    let Some(arg) = arg else {
        return 2.0;
    };
    let secs = strtod(arg);
    if secs <= 0.0 || !secs.is_finite() {
        1.0
    } else {
        secs
    }
}

/// C's `strtod` on the longest prefix that reads as a decimal number (0
/// when none does).
fn strtod(s: &str) -> f64 {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
        .unwrap_or(s.len());
    (1..=end)
        .rev()
        .find_map(|n| s[..n].parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// `%g` of the interval: six significant digits, no trailing zeros.
fn g(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let digits = (5 - x.abs().log10().floor() as i32).clamp(0, 20) as usize;
    let s = format!("{x:.digits$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// psql's title line (with its newline) over one run's result.
pub fn title(timestamp: &str, secs: f64) -> String {
    format!("{timestamp} (every {}s)\n", g(secs))
}

/// The pause between two runs.
pub fn pause(secs: f64) -> Duration {
    Duration::from_secs_f64(secs.min(86_400.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_as_psql_15() {
        assert_eq!(interval(None), 2.0);
        assert_eq!(interval(Some("0.5")), 0.5);
        assert_eq!(interval(Some("0")), 1.0);
        assert_eq!(interval(Some("-3")), 1.0);
        assert_eq!(interval(Some("abc")), 1.0);
        assert_eq!(interval(Some("3x")), 3.0);
        assert_eq!(interval(Some("1e1")), 10.0);
    }

    #[test]
    fn titles_as_psql() {
        assert_eq!(
            title("Thu Dec  3 15:04:05 2026", 2.0),
            "Thu Dec  3 15:04:05 2026 (every 2s)\n"
        );
        assert_eq!(title("T", 0.25), "T (every 0.25s)\n");
        assert_eq!(title("T", 1.0 / 3.0), "T (every 0.333333s)\n");
    }
}
