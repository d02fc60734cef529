//! OpenTelemetry in: OTLP/HTTP (`POST /v1/traces`, `POST /v1/logs`,
//! protobuf or JSON, gzip) on the main listener, and OTLP/gRPC (the trace
//! and logs services) on its own port. Spans take the same path as
//! seed-format spans: same limits, same span-derived metrics, acknowledged
//! only after commit. Spans that break a rule are reported as OTLP partial
//! success; the rest are stored.

use std::future::Future;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use swarmscope_model::{LogRecord, Span};
use swarmscope_otlp::proto::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use swarmscope_otlp::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use swarmscope_otlp::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use swarmscope_otlp::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use swarmscope_otlp::{Converted, Encoding};

use crate::body::read_body;
use crate::error::ApiError;
use crate::span_metrics;
use crate::AppState;

/// Stores converted spans like seed-format ones.
async fn store_spans(state: &AppState, mut spans: Vec<Span>) -> Result<(), ApiError> {
    if spans.is_empty() {
        return Ok(());
    }
    span_metrics::scrubbed(&state.metrics, state.scrub.spans(&mut spans));
    let derived = span_metrics::prepare(&mut spans, state.metrics.prices());
    let tenants: Vec<String> = spans.iter().map(|s| s.tenant_id.clone()).collect();
    let outcome = state.store.writer().write(spans).await?;
    span_metrics::apply(&state.metrics, &derived, &outcome.stored);
    span_metrics::accepted(&state.metrics, tenants.into_iter(), false);
    Ok(())
}

async fn store_logs(state: &AppState, mut logs: Vec<LogRecord>) -> Result<(), ApiError> {
    if logs.is_empty() {
        return Ok(());
    }
    span_metrics::scrubbed(&state.metrics, state.scrub.logs(&mut logs));
    let tenants: Vec<String> = logs.iter().map(|l| l.tenant_id.clone()).collect();
    state.store.writer().write_logs(logs).await?;
    span_metrics::accepted(&state.metrics, tenants.into_iter(), true);
    Ok(())
}

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

/// Authenticates, reads and decodes an OTLP/HTTP body (blocking thread for
/// large or gzip bodies); returns the key's tenant too.
async fn decode<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    decode: fn(&[u8], Encoding) -> Result<T, swarmscope_otlp::OtlpError>,
) -> Result<(T, Option<String>, Encoding), ApiError> {
    let principal = state.auth.authenticate(headers)?;
    let key_tenant = principal.ingest_tenant()?.map(str::to_owned);
    state.disk.check()?;
    let encoding = encoding(headers)?;
    let raw = read_body(headers, body, state.max_body_bytes).await?;
    let limit = state.max_body_bytes;
    let heavy = raw.is_heavy();
    let run = move || -> Result<T, ApiError> {
        let content = raw.into_content(limit)?;
        decode(&content, encoding)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0).field("body"))
    };
    let request = if heavy {
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|_| ApiError::internal("decoder task failed"))??
    } else {
        run()?
    };
    Ok((request, key_tenant, encoding))
}

fn answer(body: Vec<u8>, encoding: Encoding) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    resp
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

/// `POST /v1/traces`.
pub(crate) async fn post_traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let (request, key_tenant, encoding) =
            decode(&state, &headers, body, swarmscope_otlp::decode_traces).await?;
        let converted =
            swarmscope_otlp::spans_from_request(&request, key_tenant.as_deref(), &state.limits);
        log_rejected(&converted, "spans");
        store_spans(&state, converted.items).await?;
        Ok::<_, ApiError>(answer(
            swarmscope_otlp::encode_trace_response(
                converted.rejected,
                converted.first_error.as_deref().unwrap_or(""),
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
        let (request, key_tenant, encoding) =
            decode(&state, &headers, body, swarmscope_otlp::decode_logs).await?;
        let converted =
            swarmscope_otlp::logs_from_request(&request, key_tenant.as_deref(), &state.limits);
        log_rejected(&converted, "log records");
        store_logs(&state, converted.items).await?;
        Ok::<_, ApiError>(answer(
            swarmscope_otlp::encode_logs_response(
                converted.rejected,
                converted.first_error.as_deref().unwrap_or(""),
                encoding,
            ),
            encoding,
        ))
    }
    .await;
    result.unwrap_or_else(|e| {
        state.metrics.rejected(true, e.status.as_u16());
        e.into_response()
    })
}

/// The gRPC services, over the same state.
#[derive(Clone)]
struct Grpc {
    state: AppState,
}

fn status(e: ApiError) -> tonic::Status {
    let code = match e.status.as_u16() {
        400 | 413 => tonic::Code::InvalidArgument,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        503 | 507 => tonic::Code::Unavailable,
        _ => tonic::Code::Internal,
    };
    tonic::Status::new(code, e.message)
}

impl Grpc {
    /// Authenticates an export: the key's tenant (`None` for admin keys).
    /// Failed authentications count toward the same per-address lockout as
    /// on HTTP, and a locked-out address gets `RESOURCE_EXHAUSTED`.
    fn key_tenant<T>(&self, request: &tonic::Request<T>) -> Result<Option<String>, tonic::Status> {
        let ip = request.remote_addr().map(|a| a.ip());
        let now = std::time::Instant::now();
        if let Some(secs) = ip.and_then(|ip| self.state.lockout.locked(ip, now)) {
            return Err(tonic::Status::resource_exhausted(format!(
                "too many failed authentications; try again in {secs} s"
            )));
        }
        let headers = request.metadata().clone().into_headers();
        let principal = self.state.auth.authenticate(&headers).map_err(|e| {
            if let (Some(ip), StatusCode::UNAUTHORIZED) = (ip, e.status) {
                self.state.lockout.failed(ip, now);
            }
            status(e)
        })?;
        let tenant = principal
            .ingest_tenant()
            .map_err(status)?
            .map(str::to_owned);
        self.state.disk.check().map_err(status)?;
        Ok(tenant)
    }
}

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let key_tenant = self.key_tenant(&request)?;
        let converted = swarmscope_otlp::spans_from_request(
            request.get_ref(),
            key_tenant.as_deref(),
            &self.state.limits,
        );
        log_rejected(&converted, "spans");
        store_spans(&self.state, converted.items)
            .await
            .map_err(status)?;
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: (converted.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: converted.rejected as i64,
                error_message: converted.first_error.unwrap_or_default(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let key_tenant = self.key_tenant(&request)?;
        let converted = swarmscope_otlp::logs_from_request(
            request.get_ref(),
            key_tenant.as_deref(),
            &self.state.limits,
        );
        log_rejected(&converted, "log records");
        store_logs(&self.state, converted.items)
            .await
            .map_err(status)?;
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: (converted.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: converted.rejected as i64,
                error_message: converted.first_error.unwrap_or_default(),
            }),
        }))
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown` completes.
pub async fn serve_grpc(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let limit = state.max_body_bytes;
    let grpc = Grpc { state };
    let traces = TraceServiceServer::new(grpc.clone())
        .max_decoding_message_size(limit)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    let logs = LogsServiceServer::new(grpc)
        .max_decoding_message_size(limit)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        // One limit over every connection, before messages are decoded: as
        // on the HTTP ingest routes, memory stays bounded whatever the number
        // of connections.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            2 * crate::INGEST_CONCURRENCY,
        ))
        .add_service(traces)
        .add_service(logs)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| e.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::transport::server::TcpConnectInfo;

    fn request_from(ip: [u8; 4], key: &str) -> tonic::Request<ExportTraceServiceRequest> {
        let mut r = tonic::Request::new(ExportTraceServiceRequest::default());
        r.extensions_mut().insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(SocketAddr::from((ip, 40_000))),
        });
        let value = format!("Bearer {key}").parse().expect("metadata value");
        r.metadata_mut().insert("authorization", value);
        r
    }

    #[tokio::test]
    async fn failed_grpc_authentications_lock_the_address_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = swarmscope_store::Store::open(dir.path(), Default::default()).expect("store");
        let config = crate::Config::parse(&format!(
            "auth_failures_per_minute = 3\n[[keys]]\nhash = \"{}\"\nroles = [\"admin\"]\n",
            crate::auth::hash_key("ssk_right")
        ))
        .expect("config");
        let grpc = Grpc {
            state: AppState::new(store, &config).expect("state"),
        };
        for _ in 0..3 {
            let e = TraceService::export(&grpc, request_from([10, 0, 0, 1], "ssk_wrong"))
                .await
                .expect_err("refused");
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
        }
        // Locked out now, even with the right key; another address is not.
        let e = TraceService::export(&grpc, request_from([10, 0, 0, 1], "ssk_right"))
            .await
            .expect_err("locked out");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert!(
            TraceService::export(&grpc, request_from([10, 0, 0, 2], "ssk_right"))
                .await
                .is_ok()
        );
    }
}
