//! The editor's completion data: `GET /api/sandbox/schema` against a real
//! sandbox (tables, views, columns with types, schemas, functions, in the
//! shape `@codemirror/lang-sql` wants; its time with 200 tables), and the
//! front-end build's promises (one `@codemirror/state` in the lockfile, the
//! bundle's gzipped size).

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use std::io::Write;

use serde_json::Value;

fn columns(schema: &Value, ns: &str, table: &str) -> Vec<(String, String)> {
    schema["schema"][ns][table]
        .as_array()
        .unwrap_or_else(|| panic!("no {ns}.{table} in {schema}"))
        .iter()
        .map(|c| {
            assert_eq!(c["type"], "property", "{c}");
            (
                c["label"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn schema_endpoint_answers_the_learners_own_schema() {
    let Some(lab) = labs::start("local", "schema-learner", &[]).await else {
        return;
    };
    lab.sql(
        "T1",
        "create table tasks (id bigint primary key, title text not null, due date, price numeric(10,2));
         create view open_tasks as select id, title from tasks;
         create schema audit;
         create table audit.events (at timestamptz, what varchar(40));
         create function audit.touch(a int, b text) returns boolean language sql as 'select true';
         alter table tasks drop column due;",
    )
    .await;
    let s = lab.ok("GET", "/api/sandbox/schema").await;
    assert_eq!(s["running"], true, "{s}");
    assert_eq!(s["default_schema"], "public");
    assert_eq!(
        columns(&s, "public", "tasks"),
        [
            ("id".into(), "bigint".into()),
            ("title".into(), "text".into()),
            ("price".into(), "numeric(10,2)".into())
        ],
        "columns in order with types, the dropped one gone"
    );
    assert_eq!(
        columns(&s, "public", "open_tasks"),
        [
            ("id".into(), "bigint".into()),
            ("title".into(), "text".into())
        ]
    );
    assert_eq!(
        columns(&s, "audit", "events")[1],
        ("what".into(), "character varying(40)".into())
    );
    assert_eq!(s["relations"]["public.open_tasks"], "view", "{s}");
    assert_eq!(s["relations"]["public.tasks"], "table");
    assert!(s["schema"].get("pg_catalog").is_none(), "no system schemas");
    assert!(s["schema"].get("information_schema").is_none());
    let touch = s["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["label"] == "audit.touch")
        .unwrap_or_else(|| panic!("audit.touch in {s}"));
    assert_eq!(touch["type"], "function");
    assert_eq!(touch["detail"], "(a integer, b text) → boolean");
    let files = s["lab_files"].as_array().unwrap();
    assert!(
        files.iter().all(|f| f.as_str().unwrap().ends_with(".sql")),
        "{s}"
    );

    // A table created a moment ago is there on the next call.
    lab.sql("T1", "create table fresh_one (x int)").await;
    let s = lab.ok("GET", "/api/sandbox/schema").await;
    assert_eq!(
        columns(&s, "public", "fresh_one"),
        [("x".into(), "integer".into())]
    );

    // 200 tables of 8 columns all come back, with their columns (the
    // endpoint's speed is the console benchmark's: `scripts/bench.sh console`).
    lab.sql(
        "T1",
        "do $$ begin for i in 1..200 loop
           execute format('create table bench_%s (id int primary key, a text, b int, c date, d numeric, e jsonb, f bool, g bytea)', i);
         end loop; end $$;",
    )
    .await;
    let s = lab.ok("GET", "/api/sandbox/schema").await;
    for i in [1, 100, 200] {
        assert_eq!(
            columns(&s, "public", &format!("bench_{i}")).len(),
            8,
            "bench_{i}"
        );
    }

    // A stopped sandbox is not started by it: an empty schema.
    lab.ok("POST", "/api/sandbox/stop").await;
    let s = lab.ok("GET", "/api/sandbox/schema").await;
    assert_eq!(s["running"], false, "{s}");
    assert_eq!(s["schema"], serde_json::json!({}));
}

#[test]
fn one_copy_of_codemirror_state_in_the_lockfile() {
    let root = env!("CARGO_MANIFEST_DIR");
    let lock: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/package-lock.json")).unwrap(),
    )
    .unwrap();
    let packages = lock["packages"].as_object().unwrap();
    let copies: Vec<&String> = packages
        .keys()
        .filter(|k| k.ends_with("node_modules/@codemirror/state"))
        .collect();
    assert_eq!(copies, ["node_modules/@codemirror/state"], "{copies:?}");
    for name in ["view", "lang-sql", "autocomplete", "search", "commands"] {
        let key = format!("node_modules/@codemirror/{name}");
        assert!(packages.contains_key(&key), "{key} in the lockfile");
        let integrity = packages[&key]["integrity"].as_str().unwrap_or("");
        assert!(
            integrity.starts_with("sha512-"),
            "{key} pinned: {integrity}"
        );
    }
}

/// The bundle `npm run build` makes (scripts/test.sh and build.rs run it).
#[test]
fn editor_bundle_is_small_and_has_no_eval() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/static/js/codemirror.js");
    let Ok(bundle) = std::fs::read(path) else {
        panic!("{path} is missing: run `npm ci && npm run build`");
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bundle).unwrap();
    let gzipped = gz.finish().unwrap().len();
    println!(
        "editor bundle: {} KB, {} KB gzipped",
        bundle.len() / 1024,
        gzipped / 1024
    );
    assert!(gzipped <= 200 * 1024, "{gzipped} bytes gzipped");
    let text = String::from_utf8_lossy(&bundle);
    assert!(!text.contains("eval("), "no eval under script-src 'self'");
    assert!(!text.contains("new Function("));
    assert!(text.contains("pglabCM"));
}
