#!/usr/bin/env node
// Send a fixed, known set of spans and one log record to an OTLP endpoint
// with the official OpenTelemetry JS SDK (swarmscope integration tests).
//
//   node emit.mjs --endpoint http://127.0.0.1:PORT --protocol http|grpc \
//                 --key KEY --run-id ID [--tenant T] [--json]
//
// http: traces go to BASE/v1/traces, logs to BASE/v1/logs; protobuf, or
//       OTLP/JSON with --json. grpc: BASE is an insecure OTLP/gRPC server.
// On success prints one JSON line
//   {"trace_id": "<32 hex>", "spans": {"http.request": "<16 hex>", ...}}
// and exits 0; if any export fails it prints a message on stderr, exits 1.
//
// ESM ignores NODE_PATH: this file must sit in (or below) a directory whose
// node_modules holds the packages of package.json next to it.

import { parseArgs } from 'node:util';

// Hermetic run: no OTEL_* variable of the caller may change what is sent.
// (Done before the SDK modules are loaded; they are imported dynamically.)
for (const name of Object.keys(process.env)) {
  if (name.startsWith('OTEL_')) delete process.env[name];
}

const { diag, DiagLogLevel, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode } =
  await import('@opentelemetry/api');
const { SeverityNumber } = await import('@opentelemetry/api-logs');
const { defaultResource, resourceFromAttributes } = await import('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
const { LoggerProvider, BatchLogRecordProcessor } = await import('@opentelemetry/sdk-logs');

const EXPORT_TIMEOUT_MS = 10000;

function usage(msg) {
  process.stderr.write(
    `emit.mjs: ${msg}\nusage: node emit.mjs --endpoint http://127.0.0.1:PORT ` +
      `--protocol http|grpc --key KEY --run-id ID [--tenant T] [--json]\n`,
  );
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      endpoint: { type: 'string' },
      protocol: { type: 'string' },
      key: { type: 'string' },
      'run-id': { type: 'string' },
      tenant: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  usage(e.message);
}
for (const req of ['endpoint', 'protocol', 'key', 'run-id']) {
  if (args[req] === undefined) usage(`--${req} is required`);
}
if (!['http', 'grpc'].includes(args.protocol)) usage('--protocol must be http or grpc');
if (args.json && args.protocol !== 'http') usage('--json needs --protocol http');

// Every diag error (the SDK's global error handler reports failed exports of
// the batch processors there) makes the run fail; warnings are only echoed.
const sdkErrors = [];
diag.setLogger(
  {
    error: (...a) => {
      sdkErrors.push(a.map(String).join(' '));
      process.stderr.write(`otel ERROR: ${a.map(String).join(' ')}\n`);
    },
    warn: (...a) => process.stderr.write(`otel WARN: ${a.map(String).join(' ')}\n`),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  },
  { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
);

// Delegating exporter that remembers each export result, so a failure is
// seen even where a processor only hands it to the global error handler.
function checked(inner, what) {
  const state = { exported: 0, failures: 0, errors: [] };
  const exporter = {
    export(items, done) {
      inner.export(items, (result) => {
        if (result.code === 0 /* ExportResultCode.SUCCESS */) {
          state.exported += items.length;
        } else {
          state.failures += 1;
          state.errors.push(`${what}: ${result.error?.message ?? result.error ?? 'failed'}`);
        }
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => (inner.forceFlush ? inner.forceFlush() : Promise.resolve()),
  };
  return { exporter, state };
}

const base = args.endpoint.replace(/\/+$/, '');
const authorization = `Bearer ${args.key}`;
let spanExporter;
let logExporter;
if (args.protocol === 'http') {
  const traceMod = args.json
    ? await import('@opentelemetry/exporter-trace-otlp-http')
    : await import('@opentelemetry/exporter-trace-otlp-proto');
  const logMod = args.json
    ? await import('@opentelemetry/exporter-logs-otlp-http')
    : await import('@opentelemetry/exporter-logs-otlp-proto');
  const headers = { authorization };
  spanExporter = new traceMod.OTLPTraceExporter({
    url: `${base}/v1/traces`,
    headers,
    timeoutMillis: EXPORT_TIMEOUT_MS,
  });
  logExporter = new logMod.OTLPLogExporter({
    url: `${base}/v1/logs`,
    headers,
    timeoutMillis: EXPORT_TIMEOUT_MS,
  });
} else {
  // The gRPC exporters take metadata only as a @grpc/grpc-js Metadata object
  // (not a direct dependency), or from the environment, which they read when
  // constructed: use the per-signal header variables (values URL-encoded).
  const hdr = `authorization=${encodeURIComponent(authorization)}`;
  process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS = hdr;
  process.env.OTEL_EXPORTER_OTLP_LOGS_HEADERS = hdr;
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
  const { OTLPLogExporter } = await import('@opentelemetry/exporter-logs-otlp-grpc');
  // An http:// URL selects insecure (plaintext) credentials.
  spanExporter = new OTLPTraceExporter({ url: base, timeoutMillis: EXPORT_TIMEOUT_MS });
  logExporter = new OTLPLogExporter({ url: base, timeoutMillis: EXPORT_TIMEOUT_MS });
}

const spans = checked(spanExporter, 'span export');
const logs = checked(logExporter, 'log export');

const attrs = { 'service.name': 'otel-node', ticket_id: args['run-id'] };
if (args.tenant !== undefined) attrs.tenant_id = args.tenant;
const resource = defaultResource().merge(resourceFromAttributes(attrs));

const spanProcessor = new BatchSpanProcessor(spans.exporter, {
  exportTimeoutMillis: EXPORT_TIMEOUT_MS * 3,
});
// sdk-logs 0.2xx: the exporter is an option, not a positional argument.
const logProcessor = new BatchLogRecordProcessor({
  exporter: logs.exporter,
  exportTimeoutMillis: EXPORT_TIMEOUT_MS * 3,
});
const tracerProvider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
const loggerProvider = new LoggerProvider({ resource, processors: [logProcessor] });
const tracer = tracerProvider.getTracer('swarmscope-otel-emit', '1.0.0');
const logger = loggerProvider.getLogger('swarmscope-otel-emit', '1.0.0');

// No context manager is registered (that would need another package), so
// parents are passed as explicit contexts.
const httpSpan = tracer.startSpan(
  'http.request',
  {
    kind: SpanKind.SERVER,
    attributes: { method: 'POST', path: '/api/tenants/{tenant}/tickets/claim', status_code: 200 },
  },
  ROOT_CONTEXT,
);
const httpCtx = trace.setSpan(ROOT_CONTEXT, httpSpan);
const agentSpan = tracer.startSpan(
  'agent.execute',
  { kind: SpanKind.INTERNAL, attributes: { agent_type: 'forge' } },
  httpCtx,
);
const agentCtx = trace.setSpan(ROOT_CONTEXT, agentSpan);
const llmSpan = tracer.startSpan(
  'llm.generate',
  {
    kind: SpanKind.CLIENT,
    attributes: {
      model: 'claude-sonnet-4-5',
      input_tokens: 1200,
      output_tokens: 300,
      retried: true,
      temperature: 0.2,
      tags: ['a', 'b'],
    },
    links: [{ context: httpSpan.spanContext(), attributes: { reason: 'caused-by' } }],
  },
  agentCtx,
);
llmSpan.addEvent('retry', { attempt: 2 });
const llmCtx = trace.setSpan(ROOT_CONTEXT, llmSpan);

logger.emit({
  timestamp: Date.now(),
  context: llmCtx,
  severityNumber: SeverityNumber.WARN,
  severityText: 'WARN',
  body: 'Claude API error, retrying',
  attributes: { ticket_id: args['run-id'], attempt: 2 },
});

httpSpan.setStatus({ code: SpanStatusCode.OK });
agentSpan.setStatus({ code: SpanStatusCode.OK });
llmSpan.setStatus({ code: SpanStatusCode.ERROR, message: '529 overloaded_error' });

// Ended in the order http.request, agent.execute, llm.generate (the batch is
// exported in that order), with end times that keep each child inside its
// parent. Epoch milliseconds; +1 so no end lies before its (sub-ms) start.
const now = Date.now() + 1;
httpSpan.end(now + 2);
agentSpan.end(now + 1);
llmSpan.end(now);

const problems = [];
for (const [what, p] of [
  ['span force_flush', spanProcessor.forceFlush()],
  ['log force_flush', logProcessor.forceFlush()],
]) {
  try {
    await p;
  } catch (e) {
    problems.push(`${what}: ${e?.message ?? e}`);
  }
}
for (const [what, p] of [
  ['tracer provider shutdown', tracerProvider.shutdown()],
  ['logger provider shutdown', loggerProvider.shutdown()],
]) {
  try {
    await p;
  } catch (e) {
    problems.push(`${what}: ${e?.message ?? e}`);
  }
}

problems.push(...spans.state.errors, ...logs.state.errors);
if (spans.state.exported !== 3) problems.push(`${spans.state.exported}/3 spans sent`);
if (logs.state.exported !== 1) problems.push(`${logs.state.exported}/1 log records sent`);
if (sdkErrors.length) problems.push(`SDK logged ${sdkErrors.length} error(s): ${sdkErrors[0]}`);

if (problems.length) {
  process.stderr.write(`emit.mjs: export failed: ${[...new Set(problems)].join('; ')}\n`, () =>
    process.exit(1),
  );
} else {
  const out = {
    trace_id: httpSpan.spanContext().traceId,
    spans: {
      'http.request': httpSpan.spanContext().spanId,
      'agent.execute': agentSpan.spanContext().spanId,
      'llm.generate': llmSpan.spanContext().spanId,
    },
  };
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
}

