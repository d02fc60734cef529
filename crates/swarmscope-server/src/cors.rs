//! Cross-origin access for browsers, off unless `cors_origins` lists sites.
//!
//! The embedded viewer is same-origin and needs none of this. A dashboard on
//! another host (the seed's `dashboard.` and `api.` split, or an in-house
//! page) may call the API once its exact origin is configured; every other
//! origin gets no CORS headers, so browsers keep it from reading responses.
//! Keys travel in the `Authorization` header, never cookies, so credentials
//! mode is not enabled.

use std::time::Duration;

use axum::http::{header, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The layer for `origins` (already validated by [`crate::Config::validate`]),
/// or `None` when the list is empty.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(&normalize(o)).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                header::HeaderName::from_static("traceparent"),
            ])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

/// The form a browser sends in `Origin`: lower case, default port left out,
/// so `https://Dash.example.com:443` in the config still matches.
fn normalize(origin: &str) -> String {
    let lower = origin.to_ascii_lowercase();
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if lower.starts_with(scheme) {
            if let Some(bare) = lower.strip_suffix(port) {
                return bare.to_owned();
            }
        }
    }
    lower
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_take_the_form_browsers_send() {
        for (configured, sent) in [
            ("https://Dash.Example.com:443", "https://dash.example.com"),
            ("http://localhost:80", "http://localhost"),
            ("https://a.example:8443", "https://a.example:8443"),
            ("http://a.example:443", "http://a.example:443"),
        ] {
            assert_eq!(super::normalize(configured), sent);
        }
    }
}
