#!/usr/bin/env python3
"""Send a fixed, known set of spans and one log record to an OTLP endpoint
with the official OpenTelemetry Python SDK (swarmscope integration tests).

    emit.py --endpoint http://127.0.0.1:PORT --protocol http|grpc \
            --key KEY --run-id ID [--tenant T] [--json]

http: traces go to BASE/v1/traces, logs to BASE/v1/logs (OTLP/HTTP protobuf).
grpc: BASE is an insecure OTLP/gRPC server.
--json is not supported here (the Python OTLP/HTTP exporter only speaks
protobuf): it is rejected with exit code 2.

On success prints one JSON line
    {"trace_id": "<32 hex>", "spans": {"http.request": "<16 hex>", ...}}
and exits 0. If any export fails (exporter result, or an ERROR logged by the
SDK) it prints a message on stderr and exits 1.

Needs only the packages in requirements.txt next to this file.
"""

import argparse
import json
import logging
import os
import sys
import time

# Make the run hermetic: nothing from the caller's OTEL_* environment
# (resource attributes, headers, endpoints, sampler, SDK disabled, ...) may
# change what is sent. Must happen before the SDK is imported.
for _name in list(os.environ):
    if _name.startswith("OTEL_"):
        del os.environ[_name]

from opentelemetry import trace  # noqa: E402
from opentelemetry._logs import SeverityNumber  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import (  # noqa: E402
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode  # noqa: E402

EXPORT_TIMEOUT_S = 10.0


class _ErrorCounter(logging.Handler):
    """Counts ERROR records logged by the SDK/exporters (and echoes every
    WARNING+ record to stderr)."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.errors = []
        self.setFormatter(logging.Formatter("otel %(levelname)s %(name)s: %(message)s"))

    def emit(self, record):
        sys.stderr.write(self.format(record) + "\n")
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


class _CheckedSpanExporter(SpanExporter):
    """Delegates to the real exporter and remembers every result, because the
    SDK's batch processor drops the exporter's result on the floor."""

    def __init__(self, inner):
        self.inner = inner
        self.exported = 0
        self.failures = 0

    def export(self, spans):
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # pylint: disable=broad-except
            sys.stderr.write(f"span export raised: {exc!r}\n")
            result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


class _CheckedLogExporter(LogRecordExporter):
    def __init__(self, inner):
        self.inner = inner
        self.exported = 0
        self.failures = 0

    def export(self, batch):
        try:
            result = self.inner.export(batch)
        except Exception as exc:  # pylint: disable=broad-except
            sys.stderr.write(f"log export raised: {exc!r}\n")
            result = LogRecordExportResult.FAILURE
        if result == LogRecordExportResult.SUCCESS:
            self.exported += len(batch)
        else:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def _exporters(args):
    base = args.endpoint.rstrip("/")
    headers = {"authorization": f"Bearer {args.key}"}
    if args.protocol == "http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return (
            OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=headers, timeout=EXPORT_TIMEOUT_S),
            OTLPLogExporter(endpoint=f"{base}/v1/logs", headers=headers, timeout=EXPORT_TIMEOUT_S),
        )
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return (
        OTLPSpanExporter(endpoint=base, insecure=True, headers=headers, timeout=EXPORT_TIMEOUT_S),
        OTLPLogExporter(endpoint=base, insecure=True, headers=headers, timeout=EXPORT_TIMEOUT_S),
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--protocol", required=True, choices=["http", "grpc"])
    ap.add_argument("--key", required=True, help="API key, sent as 'authorization: Bearer KEY'")
    ap.add_argument("--run-id", required=True, help="becomes resource attribute ticket_id")
    ap.add_argument("--tenant", help="becomes resource attribute tenant_id")
    ap.add_argument("--json", action="store_true", help="OTLP/JSON (not supported by the Python SDK)")
    args = ap.parse_args(argv)
    if args.json:
        ap.error("--json is not supported: the Python OTLP/HTTP exporter only sends protobuf")

    errors = _ErrorCounter()
    otel_log = logging.getLogger("opentelemetry")
    otel_log.addHandler(errors)
    otel_log.setLevel(logging.WARNING)
    otel_log.propagate = False

    attrs = {"service.name": "otel-py", "ticket_id": args.run_id}
    if args.tenant is not None:
        attrs["tenant_id"] = args.tenant
    resource = Resource.create(attrs)

    span_exp, log_exp = _exporters(args)
    span_exp = _CheckedSpanExporter(span_exp)
    log_exp = _CheckedLogExporter(log_exp)

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exp))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exp))

    tracer = tracer_provider.get_tracer("swarmscope-otel-emit", "1.0.0")
    logger = logger_provider.get_logger("swarmscope-otel-emit", "1.0.0")

    # The three spans are nested (http.request > agent.execute > llm.generate)
    # and ended in the order http.request, agent.execute, llm.generate (so a
    # batch is exported in that order), with explicit end timestamps that keep
    # every child's interval inside its parent's.
    http_span = tracer.start_span(
        "http.request",
        kind=SpanKind.SERVER,
        attributes={
            "method": "POST",
            "path": "/api/tenants/{tenant}/tickets/claim",
            "status_code": 200,
        },
    )
    http_ctx = trace.set_span_in_context(http_span)
    agent_span = tracer.start_span(
        "agent.execute",
        context=http_ctx,
        kind=SpanKind.INTERNAL,
        attributes={"agent_type": "forge"},
    )
    agent_ctx = trace.set_span_in_context(agent_span)
    llm_span = tracer.start_span(
        "llm.generate",
        context=agent_ctx,
        kind=SpanKind.CLIENT,
        attributes={
            "model": "claude-sonnet-4-5",
            "input_tokens": 1200,
            "output_tokens": 300,
            "retried": True,
            "temperature": 0.2,
            "tags": ["a", "b"],
        },
        links=[Link(http_span.get_span_context(), attributes={"reason": "caused-by"})],
    )
    llm_span.add_event("retry", attributes={"attempt": 2})
    llm_ctx = trace.set_span_in_context(llm_span)

    logger.emit(
        timestamp=time.time_ns(),
        context=llm_ctx,
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body="Claude API error, retrying",
        attributes={"ticket_id": args.run_id, "attempt": 2},
    )

    http_span.set_status(Status(StatusCode.OK))
    agent_span.set_status(Status(StatusCode.OK))
    llm_span.set_status(Status(StatusCode.ERROR, "529 overloaded_error"))

    now = time.time_ns()
    http_span.end(end_time=now + 2_000_000)
    agent_span.end(end_time=now + 1_000_000)
    llm_span.end(end_time=now)

    trace_ok = tracer_provider.force_flush(timeout_millis=int(EXPORT_TIMEOUT_S * 3000))
    logs_ok = logger_provider.force_flush(timeout_millis=int(EXPORT_TIMEOUT_S * 3000))
    tracer_provider.shutdown()
    logger_provider.shutdown()

    problems = []
    if not trace_ok:
        problems.append("span force_flush timed out")
    if not logs_ok:
        problems.append("log force_flush timed out")
    if span_exp.failures or span_exp.exported != 3:
        problems.append(f"span export failed ({span_exp.failures} failed batch(es), {span_exp.exported}/3 spans sent)")
    if log_exp.failures or log_exp.exported != 1:
        problems.append(f"log export failed ({log_exp.failures} failed batch(es), {log_exp.exported}/1 records sent)")
    if errors.errors:
        problems.append(f"SDK logged {len(errors.errors)} error(s): {errors.errors[0]}")
    if problems:
        sys.stderr.write("emit.py: export failed: " + "; ".join(problems) + "\n")
        return 1

    trace_id = format(http_span.get_span_context().trace_id, "032x")
    out = {
        "trace_id": trace_id,
        "spans": {
            "http.request": format(http_span.get_span_context().span_id, "016x"),
            "agent.execute": format(agent_span.get_span_context().span_id, "016x"),
            "llm.generate": format(llm_span.get_span_context().span_id, "016x"),
        },
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
