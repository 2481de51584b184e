//! The route table: every method and path template the router serves, read
//! from the router itself (axum's `Debug` of a `Router` names each route's
//! path and which methods have a handler), so that a route added anywhere in
//! `web` shows up here without anyone listing it. `tests/access_matrix.rs`
//! walks this table and fails for a route it has no expectation for.

use axum::Router;

/// One route: an HTTP method (`GET`, `POST`, ... or `*` for a service that
/// takes any method) and the path template as written (`/api/plans/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
}

/// The methods in the order axum's `MethodRouter` prints them.
const METHODS: [&str; 9] = [
    "get", "head", "delete", "options", "patch", "post", "put", "trace", "connect",
];

/// Axum's name for the tail of a nested service's path.
const NEST_TAIL: &str = "{*__private__axum_nest_tail_param}";

/// The routes of `router` (its fallback excluded), sorted. `HEAD` is left
/// out where axum answers it through the `GET` handler.
pub fn table_of<S>(router: &Router<S>) -> Vec<Route> {
    let debug = format!("{router:?}");
    // Only the path router: the fallback router lists internal catch-alls.
    let debug = debug
        .split_once("fallback_router:")
        .map_or(debug.as_str(), |(main, _)| main);
    let (routes, node) = debug.split_once("node: Node").unwrap_or((debug, ""));
    let mut out = Vec::new();
    for (id, path) in entries(node) {
        let path = path.trim_matches('"').replace(NEST_TAIL, "{*path}");
        let Some(endpoint) = entries(routes).find(|(i, _)| *i == id).map(|(_, e)| e) else {
            continue;
        };
        if let Some(fields) = endpoint.strip_prefix("MethodRouter(MethodRouter { ") {
            for method in METHODS {
                let value = fields
                    .split(", ")
                    .find_map(|f| f.strip_prefix(&format!("{method}: ")[..]))
                    .unwrap_or("None");
                if !value.starts_with("None") {
                    out.push(Route {
                        method: method.to_ascii_uppercase(),
                        path: path.clone(),
                    });
                }
            }
        } else {
            out.push(Route {
                method: "*".into(),
                path,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `RouteId(N): value` pairs of a printed map: the id and the text up to
/// the next pair.
fn entries(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut parts = text.split("RouteId(").skip(1).peekable();
    std::iter::from_fn(move || {
        let part = parts.next()?;
        let (id, rest) = part.split_once(')')?;
        let value = rest.trim_start_matches(':').trim();
        Some((id, value.trim_end_matches([',', ' ', '}'])))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};

    #[test]
    fn reads_methods_and_paths_from_a_router() {
        let router: Router = Router::new()
            .route("/a", get(|| async {}).post(|| async {}))
            .route("/b/{id}", post(|| async {}))
            .nest_service(
                "/s",
                tower::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(axum::response::Response::new(
                        axum::body::Body::empty(),
                    ))
                }),
            )
            .fallback(|| async {});
        let table: Vec<(String, String)> = table_of(&router)
            .into_iter()
            .map(|r| (r.method, r.path))
            .collect();
        let has = |m: &str, p: &str| table.contains(&(m.to_string(), p.to_string()));
        assert!(
            has("GET", "/a") && has("POST", "/a") && has("POST", "/b/{id}"),
            "{table:?}"
        );
        assert!(has("*", "/s/{*path}"), "{table:?}");
        assert!(!has("GET", "/b/{id}"), "{table:?}");
    }
}
