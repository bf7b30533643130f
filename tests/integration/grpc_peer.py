#!/usr/bin/python3
"""A real gRPC peer for the proxy's tests: Debian's python3-grpcio (it loads
under /usr/bin/python3 only), messages as raw bytes, no generated code.

Server, one process for several named servers on one host:

    /usr/bin/python3 grpc_peer.py serve --host H --name N --port P [...]

prints "ready N PORT" per server (--port 0 picks one). Service demo.Echo:

  Unary          answers NAME + ":" + request
  ServerStream   request b"K": K messages b"NAME:0" .. b"NAME:K-1"
  ClientStream   answers NAME + ":" + the request messages joined by ","
  Bidi           answers each message with NAME + ":" + message
  Stats          JSON {name, calls, attempts: {x-request-id: n}}
  SetHealth      b"0": grpc.health.v1.Health/Check answers NOT_SERVING,
                 anything else SERVING (the default)
metadata on any call:
  x-grpc-status: N       fail with status code N (after the request is read)
  x-fail-first: K        the first K attempts with the same x-request-id
                         fail with x-grpc-status (default 14 UNAVAILABLE)
  x-delay-ms: N          sleep N ms first

Client:

    /usr/bin/python3 grpc_peer.py call --target HOST:PORT [--authority A]
        [--method Unary|ServerStream|ClientStream|Bidi] [--data D]...
        [--metadata k=v]... [--timeout S] [--repeat N]

prints one line per response message ("msg <bytes>") and per call the
status ("status OK" or "status <CODE> <details>").
"""

import argparse
import json
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "demo.Echo"


class Peer:
    def __init__(self, name):
        self.name = name.encode()
        self.lock = threading.Lock()
        self.calls = 0
        self.attempts = {}
        self.serving = True

    def _begin(self, ctx):
        md = dict(ctx.invocation_metadata())
        with self.lock:
            self.calls += 1
            rid = md.get("x-request-id", "")
            n = self.attempts.get(rid, 0) + 1
            if rid:
                self.attempts[rid] = n
        delay = int(md.get("x-delay-ms", "0"))
        if delay:
            time.sleep(delay / 1000)
        status = int(md.get("x-grpc-status", "0"))
        first = int(md.get("x-fail-first", "0"))
        if first and n <= first:
            status = status or 14
        elif first:
            status = 0
        return status

    def _fail(self, ctx, status):
        code = next(c for c in grpc.StatusCode if c.value[0] == status)
        ctx.abort(code, "asked to fail with %d" % status)

    def unary(self, req, ctx):
        status = self._begin(ctx)
        if status:
            self._fail(ctx, status)
        return self.name + b":" + req

    def server_stream(self, req, ctx):
        status = self._begin(ctx)
        if status:
            self._fail(ctx, status)
        for i in range(int(req or b"3")):
            yield self.name + b":" + str(i).encode()

    def client_stream(self, it, ctx):
        status = self._begin(ctx)
        parts = list(it)
        if status:
            self._fail(ctx, status)
        return self.name + b":" + b",".join(parts)

    def bidi(self, it, ctx):
        status = self._begin(ctx)
        if status:
            self._fail(ctx, status)
        for m in it:
            yield self.name + b":" + m

    def set_health(self, req, ctx):
        self.serving = req != b"0"
        return b"ok"

    def health_check(self, req, ctx):
        # grpc.health.v1.HealthCheckResponse: field 1 (status), SERVING=1,
        # NOT_SERVING=2; encoded by hand (no generated code).
        return b"\x08\x01" if self.serving else b"\x08\x02"

    def stats(self, req, ctx):
        with self.lock:
            return json.dumps({"name": self.name.decode(), "calls": self.calls,
                               "attempts": self.attempts}).encode()


def serve(args):
    servers = []
    for name, port in zip(args.name, args.port):
        peer = Peer(name)
        handler = grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(peer.unary),
            "ServerStream":
                grpc.unary_stream_rpc_method_handler(peer.server_stream),
            "ClientStream":
                grpc.stream_unary_rpc_method_handler(peer.client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(peer.bidi),
            "Stats": grpc.unary_unary_rpc_method_handler(peer.stats),
            "SetHealth": grpc.unary_unary_rpc_method_handler(peer.set_health),
        })
        health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(peer.health_check),
        })
        options = []
        if args.max_streams:
            options.append(("grpc.max_concurrent_streams", args.max_streams))
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=64),
                             options=options)
        server.add_generic_rpc_handlers((handler, health))
        bound = server.add_insecure_port("%s:%d" % (args.host, port))
        server.start()
        servers.append(server)
        print("ready %s %d" % (name, bound), flush=True)
    for s in servers:
        s.wait_for_termination()


def call(args):
    options = [("grpc.enable_retries", 0)]
    if args.authority:
        options.append(("grpc.default_authority", args.authority))
    channel = grpc.insecure_channel(args.target, options=options)
    path = "/%s/%s" % (SERVICE, args.method)
    md = [tuple(kv.split("=", 1)) for kv in args.metadata]
    data = [d.encode() for d in (args.data or ["hello"])]
    if args.parallel > 1:
        def one(_):
            try:
                channel.unary_unary(path)(data[0], timeout=args.timeout,
                                          metadata=md)
                return "OK"
            except grpc.RpcError as e:
                return "%s %s" % (e.code().name, e.details())
        with futures.ThreadPoolExecutor(max_workers=args.parallel) as ex:
            results = sorted(ex.map(one, range(args.parallel)))
        for r in results:
            print("status", r)
        return 0 if all(r == "OK" for r in results) else 1
    failed = 0
    for _ in range(args.repeat):
        try:
            if args.method in ("Unary", "Stats", "SetHealth"):
                r = channel.unary_unary(path)(data[0], timeout=args.timeout,
                                              metadata=md)
                print("msg", r.decode())
            elif args.method == "ServerStream":
                for r in channel.unary_stream(path)(data[0],
                                                    timeout=args.timeout,
                                                    metadata=md):
                    print("msg", r.decode())
            elif args.method == "ClientStream":
                r = channel.stream_unary(path)(iter(data), timeout=args.timeout,
                                               metadata=md)
                print("msg", r.decode())
            else:
                for r in channel.stream_stream(path)(iter(data),
                                                     timeout=args.timeout,
                                                     metadata=md):
                    print("msg", r.decode())
            print("status OK")
        except grpc.RpcError as e:
            failed += 1
            print("status", e.code().name, e.details())
        sys.stdout.flush()
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--name", action="append", default=[])
    s.add_argument("--port", action="append", type=int, default=[])
    s.add_argument("--max-streams", type=int, default=0,
                   help="SETTINGS_MAX_CONCURRENT_STREAMS per connection")
    c = sub.add_parser("call")
    c.add_argument("--target", required=True)
    c.add_argument("--authority", default="")
    c.add_argument("--method", default="Unary")
    c.add_argument("--data", action="append")
    c.add_argument("--metadata", action="append", default=[])
    c.add_argument("--timeout", type=float, default=10)
    c.add_argument("--repeat", type=int, default=1)
    c.add_argument("--parallel", type=int, default=1,
                   help="unary calls at once (prints the statuses, sorted)")
    args = p.parse_args()
    if args.cmd == "serve":
        serve(args)
        return 0
    return call(args)


if __name__ == "__main__":
    sys.exit(main())
