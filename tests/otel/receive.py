"""An independent OTLP/HTTP receiver for swarmscope's forwarding test.

Decodes what it receives with the official protobuf definitions (the
opentelemetry-proto package, not swarmscope's code) and prints one JSON line
per span and per log record on stdout. Usage: receive.py PORT
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


def attrs(kvs):
    return {kv.key: MessageToDict(kv.value) for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        auth = self.headers.get("authorization", "")
        out = []
        if self.path == "/v1/traces":
            req = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            reply = trace_service_pb2.ExportTraceServiceResponse()
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append({
                            "kind": "span", "auth": auth,
                            "resource": attrs(rs.resource.attributes),
                            "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(), "name": s.name,
                            "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                            "status_code": s.status.code, "status_message": s.status.message,
                            "attributes": attrs(s.attributes),
                            "events": [{"name": e.name, "attributes": attrs(e.attributes)} for e in s.events],
                        })
        elif self.path == "/v1/logs":
            req = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
            reply = logs_service_pb2.ExportLogsServiceResponse()
            for rl in req.resource_logs:
                for sl in rl.scope_logs:
                    for r in sl.log_records:
                        out.append({
                            "kind": "log", "auth": auth,
                            "resource": attrs(rl.resource.attributes),
                            "body": MessageToDict(r.body), "severity_number": r.severity_number,
                            "trace_id": r.trace_id.hex(), "span_id": r.span_id.hex(),
                            "attributes": attrs(r.attributes),
                        })
        else:
            self.send_response(404)
            self.end_headers()
            return
        for line in out:
            sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        data = reply.SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    server.serve_forever()
