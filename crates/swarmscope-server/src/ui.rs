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

/// `SWARMSCOPE_UI_DIR`, read once.
fn ui_dir() -> Option<&'static std::path::Path> {
    static DIR: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("SWARMSCOPE_UI_DIR").map(Into::into))
        .as_deref()
}

fn asset(name: &str, embedded: &'static str, content_type: &'static str) -> Response {
    // The embedded copy is served without copying it; a UI directory, when
    // set, is read on each request so edits show without a restart.
    let body: axum::body::Body =
        match ui_dir().and_then(|d| std::fs::read_to_string(d.join(name)).ok()) {
            Some(text) => text.into(),
            None => embedded.into(),
        };
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
