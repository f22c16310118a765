//! GraphiQL served entirely from this binary: the UMD builds vendored in
//! `assets/graphiql/` (see its README) are compiled in, so the IDE renders with
//! no network access and the page can carry a strict CSP.

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

const PREFIX: &str = "/graphiql/assets";
const INIT_JS: &[u8] = include_bytes!("../../assets/graphiql/init.js");

/// (file name, content type, bytes). Vendored names carry their version, so a
/// year-long immutable cache is safe; `init.js` is cache-busted by hash below.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql-3.9.0.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql-3.9.0.min.js"),
    ),
    (
        "graphiql-3.9.0.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql-3.9.0.min.css"),
    ),
    (
        "react-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-18.3.1.production.min.js"),
    ),
    (
        "react-dom-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom-18.3.1.production.min.js"),
    ),
    ("init.js", "text/javascript; charset=utf-8", INIT_JS),
];

/// FNV-1a at compile time: a `?v=` for init.js so edits to it bust the cache.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}
const INIT_VERSION: u64 = fnv1a(INIT_JS);

/// Only our own origin may supply scripts, styles and fetch targets. The
/// vendored CSS embeds its fonts and icons as data: URLs, hence `data:` there.
/// No 'unsafe-inline': the bootstrap lives in init.js. (The one thing this blocks is
/// the scroll-lock <style> GraphiQL injects when a dialog opens; the page never
/// scrolls, so nothing visible changes.)
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The GraphiQL HTML page (points its fetcher at `endpoint`).
pub fn page(endpoint: &str) -> Response {
    // The endpoint reaches init.js through a data- attribute, so the HTML
    // needs no inline script; escape it for an attribute value.
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>oauthlink · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{PREFIX}/graphiql-3.9.0.min.css">
</head>
<body>
<div id="graphiql" data-endpoint="{endpoint}">Loading GraphiQL…</div>
<script src="{PREFIX}/react-18.3.1.production.min.js"></script>
<script src="{PREFIX}/react-dom-18.3.1.production.min.js"></script>
<script src="{PREFIX}/graphiql-3.9.0.min.js"></script>
<script src="{PREFIX}/init.js?v={INIT_VERSION:016x}"></script>
</body>
</html>
"#,
        endpoint = escape_attr(endpoint),
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

/// Routes serving the vendored assets under `/graphiql/assets/{file}`.
pub fn asset_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(&format!("{PREFIX}/{{file}}"), get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        *body,
    )
        .into_response()
}

fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sets_strict_csp() {
        let resp = page("/graphql");
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe"));
    }

    #[test]
    fn endpoint_is_attribute_escaped() {
        assert_eq!(
            escape_attr(r#"/q?a=1&b="<x>'"#),
            "/q?a=1&amp;b=&quot;&lt;x&gt;&#39;"
        );
    }

    #[test]
    fn every_asset_is_non_empty() {
        assert!(ASSETS.iter().all(|(_, _, b)| b.len() > 100));
    }
}
