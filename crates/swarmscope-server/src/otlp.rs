//! OpenTelemetry in over HTTP: `POST /v1/traces` and `POST /v1/logs`
//! (protobuf or JSON, gzip), on the main listener. Requests take the one
//! ingest pipeline ([`crate::ingest`]); what is OTLP's is here and shared
//! with gRPC ([`crate::grpc`]): counting protobuf before decoding it,
//! refusing requests whose resource attributes would be copied onto every
//! item beyond a bound, and partial success — items that break a rule (or
//! are dated too far ahead) are left out and counted, the rest are stored.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use swarmscope_otlp::scan::{self, Kind};
use swarmscope_otlp::{Converted, Encoding};

use crate::body::RawBody;
use crate::error::ApiError;
use crate::fair_share::Reservation;
use crate::ingest::{self, Caller};
use crate::AppState;

fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Encoding::from_content_type(ct).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/x-protobuf or application/json, not {ct:?}"),
        )
        .field("content-type")
    })
}

fn bad_body(e: swarmscope_otlp::OtlpError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, e.0).field("body")
}

/// Counts a protobuf request: the prost tree and the converted items, about
/// as large again.
fn measure(content: &[u8], max_items: usize, kind: Kind) -> Result<usize, ApiError> {
    let shape = scan::scan(content, kind, max_items).map_err(bad_body)?;
    Ok(shape.decoded_bytes.saturating_mul(2))
}

fn measure_traces(content: &[u8], max_items: usize) -> Result<usize, ApiError> {
    measure(content, max_items, Kind::Traces)
}

fn measure_logs(content: &[u8], max_items: usize) -> Result<usize, ApiError> {
    measure(content, max_items, Kind::Logs)
}

/// Refuses a request whose resource and scope attributes, copied onto every
/// item it holds, would store more than four bodies' worth.
fn check_copies(state: &AppState, copied: usize) -> Result<(), ApiError> {
    let bound = state.max_body_bytes.saturating_mul(4);
    if copied > bound {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "resource attributes copied onto every item would store {copied} bytes (limit {bound}): send fewer items per resource or smaller resource attributes"
            ),
        )
        .field("resource"));
    }
    Ok(())
}

/// Leaves out the items dated beyond the allowed skew, as partial success.
fn leave_out_future<T>(state: &AppState, converted: &mut Converted<T>, time_of: fn(&T) -> i64) {
    let now = swarmscope_model::timestamp::now_nanos();
    let mut reasons = Vec::new();
    converted.items.retain(|item| {
        match ingest::future_time(time_of(item), now, state.future_skew_ns) {
            Some(why) => {
                reasons.push(why);
                false
            }
            None => true,
        }
    });
    for why in reasons {
        converted.reject(why);
    }
}

/// Refuses a request of more items than one request may carry (protobuf is
/// refused while it is counted; OTLP/JSON, whose items nest deeper than the
/// JSON count looks, here, after parsing within its memory reservation).
fn check_count(state: &AppState, items: usize) -> Result<(), ApiError> {
    let max = state.limits.max_spans_per_request;
    if items > max {
        return Err(bad_body(swarmscope_otlp::OtlpError(format!(
            "too many items in one request: {items} (limit {max})"
        ))));
    }
    Ok(())
}

fn log_rejected<T>(c: &Converted<T>, what: &str) {
    if c.rejected > 0 {
        tracing::info!(
            rejected = c.rejected,
            reason = c.first_error.as_deref().unwrap_or(""),
            "OTLP {what} partially rejected"
        );
    }
}

/// What an export left out: how many items, and why the first one was.
pub(crate) type Rejected = (u64, Option<String>);

/// Decodes, converts, validates and stores a trace export (HTTP or gRPC).
pub(crate) async fn export_traces(
    state: &AppState,
    caller: &Caller,
    raw: RawBody,
    held: Reservation,
    encoding: Encoding,
) -> Result<Rejected, ApiError> {
    let measure = match encoding {
        Encoding::Protobuf => measure_traces,
        Encoding::Json => ingest::measure_json,
    };
    let (request, mut parsed) = ingest::decode(state, caller, raw, held, measure, move |content| {
        swarmscope_otlp::decode_traces(content, encoding).map_err(bad_body)
    })
    .await?;
    check_copies(state, swarmscope_otlp::copied_bytes_traces(&request))?;
    check_count(state, swarmscope_otlp::span_count(&request))?;
    let mut converted =
        swarmscope_otlp::spans_from_request(&request, caller.key_tenant.as_deref(), &state.limits);
    drop(request);
    parsed.items_only();
    leave_out_future(state, &mut converted, |s| {
        s.start_ns.max(s.end_ns.unwrap_or(0))
    });
    log_rejected(&converted, "spans");
    ingest::store_spans(state, caller, converted.items).await?;
    Ok((converted.rejected, converted.first_error))
}

/// Decodes, converts, validates and stores a logs export (HTTP or gRPC).
pub(crate) async fn export_logs(
    state: &AppState,
    caller: &Caller,
    raw: RawBody,
    held: Reservation,
    encoding: Encoding,
) -> Result<Rejected, ApiError> {
    let measure = match encoding {
        Encoding::Protobuf => measure_logs,
        Encoding::Json => ingest::measure_json,
    };
    let (request, mut parsed) = ingest::decode(state, caller, raw, held, measure, move |content| {
        swarmscope_otlp::decode_logs(content, encoding).map_err(bad_body)
    })
    .await?;
    check_copies(state, swarmscope_otlp::copied_bytes_logs(&request))?;
    check_count(state, swarmscope_otlp::log_count(&request))?;
    let mut converted =
        swarmscope_otlp::logs_from_request(&request, caller.key_tenant.as_deref(), &state.limits);
    drop(request);
    parsed.items_only();
    leave_out_future(state, &mut converted, |l| l.time_ns);
    log_rejected(&converted, "log records");
    ingest::store_logs(state, caller, converted.items).await?;
    Ok((converted.rejected, converted.first_error))
}

fn answer(body: Vec<u8>, encoding: Encoding) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    resp
}

/// `POST /v1/traces`.
pub(crate) async fn post_traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let caller = ingest::admit(&state, &headers)?;
        let encoding = encoding(&headers)?;
        let (raw, held) = ingest::read(&state, &caller, &headers, body).await?;
        let (rejected, why) = export_traces(&state, &caller, raw, held, encoding).await?;
        Ok::<_, ApiError>(answer(
            swarmscope_otlp::encode_trace_response(
                rejected,
                why.as_deref().unwrap_or(""),
                encoding,
            ),
            encoding,
        ))
    }
    .await;
    result.unwrap_or_else(|e| {
        state.metrics.rejected(false, e.status.as_u16());
        e.into_response()
    })
}

/// `POST /v1/logs`.
pub(crate) async fn post_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let caller = ingest::admit(&state, &headers)?;
        let encoding = encoding(&headers)?;
        let (raw, held) = ingest::read(&state, &caller, &headers, body).await?;
        let (rejected, why) = export_logs(&state, &caller, raw, held, encoding).await?;
        Ok::<_, ApiError>(answer(
            swarmscope_otlp::encode_logs_response(rejected, why.as_deref().unwrap_or(""), encoding),
            encoding,
        ))
    }
    .await;
    result.unwrap_or_else(|e| {
        state.metrics.rejected(true, e.status.as_u16());
        e.into_response()
    })
}

/// Where OTLP/gRPC listens: `otlp_grpc_listen`, else port 4317 on the main
/// listener's address (an ephemeral port when the main one is).
pub fn grpc_addr(config: &crate::Config) -> Option<SocketAddr> {
    if !config.otlp_grpc {
        return None;
    }
    Some(config.otlp_grpc_listen.unwrap_or_else(|| {
        let port = if config.listen.port() == 0 { 0 } else { 4317 };
        SocketAddr::new(config.listen.ip(), port)
    }))
}
