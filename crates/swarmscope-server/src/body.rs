//! Reading request bodies within bounds: the raw size is capped, and a gzip
//! body's decompressed size is capped too, so a small bomb cannot expand.
//! Decompression happens in [`RawBody::into_content`], which ingest runs on
//! a blocking thread.

use std::io::Read;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};

use crate::error::ApiError;

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{what} is larger than the limit of {limit} bytes"),
    )
    .field("body")
}

/// A request body as received, before decompression.
pub(crate) struct RawBody {
    pub(crate) bytes: Vec<u8>,
    pub(crate) gzip: bool,
}

impl RawBody {
    /// Whether decoding it may take long enough to belong on a blocking
    /// thread: gzip (it can expand up to the limit) or a large body.
    pub(crate) fn is_heavy(&self) -> bool {
        self.gzip || self.bytes.len() > 64 * 1024
    }

    /// The body's content, gunzipped when needed, refusing more than `limit`
    /// bytes out. Blocking work for a large body: call it off the async workers.
    pub(crate) fn into_content(self, limit: usize) -> Result<Vec<u8>, ApiError> {
        if !self.gzip {
            return Ok(self.bytes);
        }
        let mut out = Vec::with_capacity(self.bytes.len().saturating_mul(4).min(limit));
        let mut decoder = flate2::read::GzDecoder::new(&self.bytes[..]).take(limit as u64 + 1);
        decoder.read_to_end(&mut out).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("invalid gzip body: {e}")).field("body")
        })?;
        if out.len() > limit {
            return Err(too_large(limit, "decompressed request body"));
        }
        Ok(out)
    }
}

/// Reads the whole body, refusing more than `limit` bytes; notes whether it
/// is gzip (`Content-Encoding`), refusing other encodings.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<RawBody, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit, "request body"));
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let gzip = match encoding.as_deref() {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {other:?} (use gzip or none)"),
            )
            .field("Content-Encoding"))
        }
    };
    let raw = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let over_limit =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            return Err(if over_limit {
                too_large(limit, "request body")
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("could not read the request body: {e}"),
                )
                .field("body")
            });
        }
    };
    Ok(RawBody {
        bytes: raw.to_vec(),
        gzip,
    })
}
