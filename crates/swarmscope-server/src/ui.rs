//! The trace viewer: a single page (HTML, one script, one stylesheet)
//! compiled into the binary, so `cargo build` needs no Node toolchain and
//! the page needs no network. It talks to the same JSON API as everyone else.
//!
//! For working on the UI without rebuilding, `SWARMSCOPE_UI_DIR=crates/swarmscope-server/ui`
//! serves the files from that directory instead (read on each request).

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

/// Only our own origin; no inline script; no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

fn asset(name: &str, embedded: &'static str, content_type: &'static str) -> Response {
    let body: String = std::env::var_os("SWARMSCOPE_UI_DIR")
        .and_then(|dir| std::fs::read_to_string(std::path::Path::new(&dir).join(name)).ok())
        .unwrap_or_else(|| embedded.to_owned());
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the page.
pub(crate) async fn index() -> Response {
    asset("index.html", INDEX_HTML, "text/html; charset=utf-8")
}

/// `GET /ui/app.js`.
pub(crate) async fn script() -> Response {
    asset("app.js", APP_JS, "text/javascript; charset=utf-8")
}

/// `GET /ui/app.css`.
pub(crate) async fn stylesheet() -> Response {
    asset("app.css", APP_CSS, "text/css; charset=utf-8")
}
