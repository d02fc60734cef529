//! Reading request bodies within bounds: the raw size is capped, the read has
//! a deadline (a client trickling bytes cannot hold a request open), and a
//! gzip body's decompressed size is capped too, so a small bomb cannot
//! expand. Every gzip member is decoded (a body of several members is one
//! stream, as RFC 1952 says), and anything after the last one is refused:
//! nothing is acknowledged that was not read. Decompression happens in
//! [`RawBody::into_content`], which ingest runs on a blocking thread.

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
        // Room for the whole limit up front: pages are touched only as the
        // output grows, and no doubling reallocation holds two copies at once.
        let mut out = Vec::with_capacity(limit.saturating_add(1));
        let mut decoder = flate2::read::MultiGzDecoder::new(&self.bytes[..]).take(limit as u64 + 1);
        decoder.read_to_end(&mut out).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("invalid gzip body: {e}")).field("body")
        })?;
        if out.len() > limit {
            return Err(too_large(limit, "decompressed request body"));
        }
        Ok(out)
    }
}

/// Whether the body is gzip (`Content-Encoding`, any case), refusing other
/// encodings.
pub(crate) fn is_gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(false),
        Some("gzip") | Some("x-gzip") => Ok(true),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding {other:?} (use gzip or none)"),
        )
        .field("Content-Encoding")),
    }
}

/// The body's declared length, refusing one over `limit` before reading.
pub(crate) fn declared_length(
    headers: &HeaderMap,
    limit: usize,
) -> Result<Option<usize>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => Err(too_large(limit, "request body")),
        Some(n) => Ok(Some(n as usize)),
        None => Ok(None),
    }
}

/// Reads the whole body within `deadline`, refusing more than `limit`
/// bytes; notes whether it is gzip.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<RawBody, ApiError> {
    declared_length(headers, limit)?;
    let gzip = is_gzip(headers)?;
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await;
    let raw = match read {
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    deadline.as_secs_f64()
                ),
            )
            .field("body"))
        }
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn every_gzip_member_is_read_and_trailing_bytes_are_refused() {
        let mut two = gzip(b"[1,");
        two.extend(gzip(b"2]"));
        let body = RawBody {
            bytes: two.clone(),
            gzip: true,
        };
        assert_eq!(body.into_content(1024).expect("two members"), b"[1,2]");
        let mut junk = two;
        junk.extend_from_slice(b"not gzip");
        let body = RawBody {
            bytes: junk,
            gzip: true,
        };
        assert_eq!(
            body.into_content(1024).expect_err("junk").status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b' '; 10 << 20]);
        assert!(bomb.len() < 64 * 1024);
        let body = RawBody {
            bytes: bomb,
            gzip: true,
        };
        let e = body.into_content(1 << 20).expect_err("too large");
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
