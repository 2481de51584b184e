//! jq filters on the inspect answer, run by jaq (a jq implementation:
//! `jaq-core`, `jaq-std`, `jaq-json`), never by a hand-made filter.
//!
//! A jq program can loop forever (`repeat(.)`, `def f: f; f`) or blow up
//! (`[range(1e9)]`), and jaq has no fuel: [`run_bounded`] runs it in a child
//! process (`pglab jq FILTER`, JSON on stdin) with an address-space and CPU
//! limit (`prlimit`, when the machine has it), killed after [`DEADLINE`],
//! its output cut at [`MAX_OUTPUT`]. [`run`] is the filter itself, what the
//! child calls.

use std::process::Stdio;
use std::time::Duration;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest filter accepted.
pub const MAX_FILTER: usize = 2000;
/// How long a filter may run.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// Most output kept (bytes); more is an error.
pub const MAX_OUTPUT: usize = 1024 * 1024;
/// Address space of the child (bytes).
const MAX_MEMORY: u64 = 512 * 1024 * 1024;

/// Runs `filter` on `input` (JSON text) and gives each output as JSON
/// text, or a message that says what is wrong with the filter.
pub fn run(filter: &str, input: &[u8]) -> Result<Vec<String>, String> {
    let input = jaq_json::read::parse_single(input).map_err(|e| format!("bad input: {e}"))?;
    let program = File {
        code: filter,
        path: (),
    };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let at = |rest: &str| filter.len().saturating_sub(rest.len()) + 1;
    let modules = loader.load(&arena, program).map_err(|errs| {
        let mut out = Vec::new();
        for (_, err) in errs {
            match err {
                jaq_core::load::Error::Io(e) => {
                    out.extend(e.into_iter().map(|(path, why)| format!("{path}: {why}")))
                }
                jaq_core::load::Error::Lex(e) => out.extend(e.into_iter().map(|(exp, rest)| {
                    format!("expected {} at character {}", exp.as_str(), at(rest))
                })),
                jaq_core::load::Error::Parse(e) => out.extend(e.into_iter().map(|(exp, rest)| {
                    format!("expected {} at character {}", exp.as_str(), at(rest))
                })),
            }
        }
        format!("the filter does not parse: {}", out.join("; "))
    })?;
    let compiled = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            let names: Vec<String> = errs
                .into_iter()
                .flat_map(|(_, e)| e)
                .map(|(name, kind)| format!("{name} ({kind:?})"))
                .collect();
            format!("the filter names what does not exist: {}", names.join(", "))
        })?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&compiled.lut, Vars::new([]));
    let mut out = Vec::new();
    let mut size = 0;
    for value in compiled.id.run((ctx, input)).map(unwrap_valr) {
        let value = value.map_err(|e| format!("the filter failed: {e}"))?;
        let text = value.to_string();
        size += text.len() + 1;
        if size > MAX_OUTPUT {
            return Err(format!("the filter's output passed {MAX_OUTPUT} bytes"));
        }
        out.push(text);
    }
    Ok(out)
}

/// Runs `filter` on `input` in a bounded child process; the outputs as
/// JSON values.
pub async fn run_bounded(
    filter: &str,
    input: &serde_json::Value,
) -> Result<Vec<serde_json::Value>, String> {
    if filter.len() > MAX_FILTER {
        return Err(format!("the filter is longer than {MAX_FILTER} characters"));
    }
    if filter.trim().is_empty() {
        return Err("the filter is empty (`.` shows everything)".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot run jq: {e}"))?;
    let prlimit = std::path::Path::new("/usr/bin/prlimit");
    let mut cmd = if prlimit.exists() {
        let mut c = tokio::process::Command::new(prlimit);
        c.arg(format!("--as={MAX_MEMORY}"))
            .arg(format!("--cpu={}", DEADLINE.as_secs().max(1)))
            .arg("--")
            .arg(exe);
        c
    } else {
        tokio::process::Command::new(exe)
    };
    cmd.arg("jq")
        .arg(filter)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run jq: {e}"))?;
    let input = input.to_string();
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(input.as_bytes()).await;
        }
        drop(stdin.take());
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut out).await;
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(4096).read_to_end(&mut err).await;
        }
        let status = child.wait().await;
        (out, err, status)
    };
    let (out, err, status) = tokio::time::timeout(DEADLINE, work).await.map_err(|_| {
        format!(
            "the filter ran longer than {} s and was stopped",
            DEADLINE.as_secs()
        )
    })?;
    let ok = status.as_ref().is_ok_and(|s| s.success());
    if !ok {
        let msg = String::from_utf8_lossy(&err).trim().to_string();
        return Err(if msg.is_empty() {
            "the filter was stopped: it used too much memory or time".into()
        } else {
            msg.trim_start_matches("pglab: ").to_string()
        });
    }
    if out.len() > MAX_OUTPUT {
        return Err(format!("the filter's output passed {MAX_OUTPUT} bytes"));
    }
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("jq gave unreadable output: {e}")))
        .collect()
}

/// `pglab jq FILTER`: the child's side; JSON on stdin, one output per line.
pub fn main(filter: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut input = Vec::new();
    std::io::stdin()
        .take(16 * 1024 * 1024)
        .read_to_end(&mut input)?;
    let outputs = run(filter, &input).map_err(anyhow::Error::msg)?;
    let mut stdout = std::io::stdout().lock();
    for line in outputs {
        writeln!(stdout, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn filters_run_and_errors_say_why() {
        let input = br#"[{"Mounts": [{"Type": "volume", "Destination": "/d"}], "State": {"Health": {"Status": "healthy"}}}]"#;
        assert_eq!(run(".[0].Mounts[0].Type", input).unwrap(), [r#""volume""#]);
        assert_eq!(
            run(".[0].State.Health.Status", input).unwrap(),
            [r#""healthy""#]
        );
        assert_eq!(run(".[] | .Mounts | length", input).unwrap(), ["1"]);
        assert_eq!(
            run("map(.Mounts[].Destination)", input).unwrap(),
            [r#"["/d"]"#]
        );
        let bad = run(".[0].Mounts[", input).unwrap_err();
        assert!(bad.contains("does not parse"), "{bad}");
        let undefined = run("nosuchfn", input).unwrap_err();
        assert!(undefined.contains("nosuchfn"), "{undefined}");
        let failed = run(".[0] | keys | .[0] + 1", input).unwrap_err();
        assert!(failed.contains("failed"), "{failed}");
    }
}
