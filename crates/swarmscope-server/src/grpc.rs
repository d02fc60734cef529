//! OpenTelemetry in over gRPC: the OTLP trace and logs services' unary
//! `Export`, on their own listener, through the one ingest pipeline.
//!
//! Written here rather than with tonic's generated server because tonic
//! decodes (and decompresses) a message before any code of ours runs: the
//! key could not be checked before the body is read, nor the items counted
//! before prost builds them, and its own limits answer OUT_OF_RANGE, which
//! OTLP exporters retry forever. Unary gRPC is small: a 5-byte frame
//! header, the message, and `grpc-status` in the trailers (or, for errors,
//! in the headers alone). The codes follow the OTLP specification:
//! permanent problems are INVALID_ARGUMENT, UNAUTHENTICATED or
//! PERMISSION_DENIED; only UNAVAILABLE (with RetryInfo) invites a retry.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use base64::Engine;
use http_body::Frame;
use prost::Message;
use swarmscope_otlp::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use swarmscope_otlp::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use swarmscope_otlp::Encoding;

use crate::body::{read_body, RawBody};
use crate::error::ApiError;
use crate::ingest;
use crate::AppState;

/// gRPC status codes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Code {
    Ok = 0,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl Code {
    /// The code for an API error, by the OTLP rules on retrying.
    fn of(e: &ApiError) -> Code {
        match e.status.as_u16() {
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            408 => Code::DeadlineExceeded,
            429 => Code::ResourceExhausted,
            503 | 507 => Code::Unavailable,
            400..=499 => Code::InvalidArgument,
            _ => Code::Internal,
        }
    }
}

const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// The gRPC listener's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(TRACES, post(traces))
        .route(LOGS, post(logs))
        .fallback(|| async {
            status(
                Code::Unimplemented,
                "only the OTLP trace and logs Export methods are served here",
                None,
            )
        })
        .with_state(state)
}

/// Percent-encodes a `grpc-message` as the gRPC spec asks.
fn percent(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `google.rpc.Status` with one `google.rpc.RetryInfo` detail, encoded by
/// hand (three small messages): how OTLP tells an exporter when to retry.
fn retry_details(code: Code, message: &str, secs: u32) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
        prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
        prost::encoding::encode_varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    let mut duration = Vec::new();
    prost::encoding::int64::encode(1, &i64::from(secs), &mut duration);
    let mut retry_info = Vec::new();
    field(&mut retry_info, 1, &duration);
    let mut any = Vec::new();
    field(&mut any, 1, b"type.googleapis.com/google.rpc.RetryInfo");
    field(&mut any, 2, &retry_info);
    let mut status = Vec::new();
    prost::encoding::int32::encode(1, &(code as i32), &mut status);
    field(&mut status, 2, message.as_bytes());
    field(&mut status, 3, &any);
    status
}

/// A trailers-only answer: the status in the headers, no body.
fn status(code: Code, message: &str, retry_after: Option<u32>) -> Response {
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(code as u16));
    if let Ok(v) = HeaderValue::from_str(&percent(message)) {
        h.insert("grpc-message", v);
    }
    if let Some(secs) = retry_after {
        let details = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(retry_details(code, message, secs));
        if let Ok(v) = HeaderValue::from_str(&details) {
            h.insert(HeaderName::from_static("grpc-status-details-bin"), v);
        }
    }
    response
}

fn error(e: ApiError) -> Response {
    let code = Code::of(&e);
    let retry = if code == Code::Unavailable {
        Some(e.retry_after.unwrap_or(1))
    } else {
        None
    };
    status(code, &e.message, retry)
}

/// One message, then `grpc-status: 0` in the trailers.
struct Unary {
    message: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for Unary {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(m) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(m))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && self.trailers.is_none()
    }
}

fn ok(message: impl Message) -> Response {
    let encoded = message.encode_to_vec();
    let mut framed = Vec::with_capacity(5 + encoded.len());
    framed.push(0);
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(Code::Ok as u16));
    let mut response = Response::new(Body::new(Unary {
        message: Some(Bytes::from(framed)),
        trailers: Some(trailers),
    }));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// Authenticates (before the body is read), then reads the one framed
/// message within the bounds every ingest request has.
async fn unframe(
    state: &AppState,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(ingest::Caller, RawBody, crate::fair_share::Reservation), Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("application/grpc") {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Err(r);
    }
    let caller = match ingest::admit(state, headers) {
        Ok(c) => c,
        Err(e) => {
            let ip =
                peer.map(|p| crate::lockout::client_ip(&state.trusted_proxies, p.ip(), headers));
            if let (Some(ip), StatusCode::UNAUTHORIZED) = (ip, e.status) {
                let now = Instant::now();
                let locked = state.lockout.locked(ip, now);
                state.lockout.failed(ip, now);
                if let Some(secs) = locked {
                    return Err(status(
                        Code::ResourceExhausted,
                        &format!("too many failed authentications; try again in {secs} s"),
                        None,
                    ));
                }
            }
            return Err(error(e));
        }
    };
    let gzip = match headers.get("grpc-encoding").and_then(|v| v.to_str().ok()) {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            let mut r = status(
                Code::Unimplemented,
                &format!("grpc-encoding {other:?} is not supported (use gzip or identity)"),
                None,
            );
            r.headers_mut().insert(
                "grpc-accept-encoding",
                HeaderValue::from_static("gzip,identity"),
            );
            return Err(r);
        }
    };
    let limit = state.max_body_bytes + 5;
    let declared = crate::body::declared_length(headers, limit).map_err(error)?;
    let held = state
        .shares
        .memory(
            &caller.share,
            declared.unwrap_or(limit) + if gzip { limit } else { 0 },
        )
        .await
        .map_err(error)?;
    // gRPC carries its compression in the frame, not in Content-Encoding.
    let mut plain = HeaderMap::new();
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        plain.insert(header::CONTENT_LENGTH, len.clone());
    }
    let raw = read_body(&plain, body, limit, state.body_timeout)
        .await
        .map_err(error)?;
    let bytes = raw.bytes;
    if bytes.len() < 5 {
        return Err(status(
            Code::InvalidArgument,
            "no gRPC message in the request",
            None,
        ));
    }
    let compressed = match bytes[0] {
        0 => false,
        1 if gzip => true,
        1 => {
            return Err(status(
                Code::InvalidArgument,
                "a compressed message without grpc-encoding",
                None,
            ))
        }
        _ => return Err(status(Code::InvalidArgument, "bad gRPC frame flag", None)),
    };
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    if len != bytes.len() - 5 {
        return Err(status(
            Code::InvalidArgument,
            "a unary request must hold exactly one gRPC message",
            None,
        ));
    }
    let message = RawBody {
        bytes: bytes[5..].to_vec(),
        gzip: compressed,
    };
    Ok((caller, message, held))
}

async fn traces(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let (caller, message, held) = match unframe(&state, peer, &parts.headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match crate::otlp::export_traces(&state, &caller, message, held, Encoding::Protobuf).await {
        Ok((rejected, why)) => ok(ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected as i64,
                error_message: why.unwrap_or_default(),
            }),
        }),
        Err(e) => {
            state.metrics.rejected(false, e.status.as_u16());
            error(e)
        }
    }
}

async fn logs(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let (caller, message, held) = match unframe(&state, peer, &parts.headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match crate::otlp::export_logs(&state, &caller, message, held, Encoding::Protobuf).await {
        Ok((rejected, why)) => ok(ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected as i64,
                error_message: why.unwrap_or_default(),
            }),
        }),
        Err(e) => {
            state.metrics.rejected(true, e.status.as_u16());
            error(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent("a b%c\né"), "a b%25c%0A%C3%A9");
    }

    #[test]
    fn codes_follow_the_otlp_retry_rules() {
        let code = |s: u16| Code::of(&ApiError::new(StatusCode::from_u16(s).expect("status"), ""));
        assert_eq!(code(400), Code::InvalidArgument);
        assert_eq!(code(413), Code::InvalidArgument);
        assert_eq!(code(401), Code::Unauthenticated);
        assert_eq!(code(503), Code::Unavailable);
        assert_eq!(code(507), Code::Unavailable);
    }
}
