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
        .filter_map(|o| HeaderValue::from_str(o).ok())
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
