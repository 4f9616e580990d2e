"""An independent OTLP receiver for Ward's export tests.

Decodes what it receives with the opentelemetry-proto package's generated
classes (gRPC through grpcio, HTTP/protobuf through http.server) and writes
one JSON line per request to --out: {"protocol", "signal", "request"}, the
request as protobuf's own JSON mapping (proto field names, 64-bit integers
as strings).

Prints "ready grpc=PORT http=PORT" once both listen.
"""

import argparse
import gzip
import json
import ssl
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)

lock = threading.Lock()


def record(out, protocol, signal, request):
    line = json.dumps(
        {
            "protocol": protocol,
            "signal": signal,
            "request": MessageToDict(request, preserving_proto_field_name=True),
        }
    )
    with lock:
        out.write(line + "\n")
        out.flush()


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, out):
        self.out = out

    def Export(self, request, context):
        record(self.out, "grpc", "metrics", request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, out):
        self.out = out

    def Export(self, request, context):
        record(self.out, "grpc", "logs", request)
        return logs_service_pb2.ExportLogsServiceResponse()


def http_handler(out):
    kinds = {
        "/v1/metrics": (
            "metrics",
            metrics_service_pb2.ExportMetricsServiceRequest,
            metrics_service_pb2.ExportMetricsServiceResponse,
        ),
        "/v1/logs": (
            "logs",
            logs_service_pb2.ExportLogsServiceRequest,
            logs_service_pb2.ExportLogsServiceResponse,
        ),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            kind = kinds.get(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if kind is None:
                self.send_error(404)
                return
            if self.headers.get("Content-Type") != "application/x-protobuf":
                self.send_error(415, "expected application/x-protobuf")
                return
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            signal, request_type, response_type = kind
            record(out, "http", signal, request_type.FromString(body))
            answer = response_type().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--grpc-port", type=int, default=0)
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--tls-cert", help="PEM certificate: serve TLS on both ports")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    out = open(args.out, "a", encoding="utf-8")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(out), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(out), server)
    if args.tls_cert:
        with open(args.tls_key, "rb") as k, open(args.tls_cert, "rb") as c:
            credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        grpc_port = server.add_secure_port(f"127.0.0.1:{args.grpc_port}", credentials)
    else:
        grpc_port = server.add_insecure_port(f"127.0.0.1:{args.grpc_port}")
    server.start()

    http = ThreadingHTTPServer(("127.0.0.1", args.http_port), http_handler(out))
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        http.socket = context.wrap_socket(http.socket, server_side=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()

    print(f"ready grpc={grpc_port} http={http.server_address[1]}", flush=True)
    sys.stdin.read()  # until the test closes stdin or kills us
    server.stop(0)
    http.shutdown()


if __name__ == "__main__":
    main()
