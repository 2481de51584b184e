//! Installs the front-end packages (xterm.js for the sandbox terminal,
//! CodeMirror and esbuild for the SQL editor) with `npm ci` when
//! `node_modules` is missing or older than `package-lock.json`, and bundles
//! the editor (`npm run build` → `static/js/codemirror.js`, git-ignored) when
//! the bundle is missing or older than its source, so that
//! `cargo run --release` works on a fresh clone. Never fails the
//! build: without npm (or offline) it warns, and the server still starts
//! (the terminal pane then says what to run). `PGLAB_SKIP_NPM=1` skips it.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=package.json");
    println!("cargo:rerun-if-changed=package-lock.json");
    println!("cargo:rerun-if-changed=static/js/cm/entry.mjs");
    println!("cargo:rerun-if-changed=static/js/codemirror.js");
    println!("cargo:rerun-if-env-changed=PGLAB_SKIP_NPM");
    // sqlx::migrate! embeds migrations/: a new file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    if std::env::var_os("PGLAB_SKIP_NPM").is_some_and(|v| v == "1") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = root.join("package-lock.json");
    let marker = root.join("node_modules/.package-lock.json");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let fresh = match (modified(&lock), modified(&marker)) {
        (Some(lock), Some(installed)) => installed >= lock,
        (None, _) => true,
        _ => false,
    };
    if !fresh {
        npm_ci(root);
    }
    let bundle = root.join("static/js/codemirror.js");
    let sources = [root.join("static/js/cm/entry.mjs"), lock.clone()];
    let bundled = modified(&bundle);
    if bundled.is_some() && sources.iter().all(|s| modified(s) <= bundled) {
        return;
    }
    match Command::new("npm")
        .args(["run", "--silent", "build"])
        .current_dir(root)
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => println!(
            "cargo:warning=`npm run build` failed ({s}): the SQL editor falls back to a plain textarea"
        ),
        Err(e) => println!(
            "cargo:warning=npm is not available ({e}): the SQL editor falls back to a plain textarea"
        ),
    }
}

fn npm_ci(root: &Path) {
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(root)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => println!(
            "cargo:warning=`npm ci` failed ({s}): the sandbox terminal needs it; run `npm ci` in {}",
            root.display()
        ),
        Err(e) => println!(
            "cargo:warning=npm is not available ({e}): the sandbox terminal's xterm.js is missing; install Node.js and run `npm ci` in {}",
            root.display()
        ),
    }
}
