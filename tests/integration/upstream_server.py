#!/usr/bin/python3
"""A real HTTP/1.1 upstream for the proxy's integration tests (stdlib only).

    /usr/bin/python3 upstream_server.py --port P --name NAME [--host 127.0.0.1]

Prints "ready NAME PORT" on stdout once listening (--port 0 picks a free
port). Keep-alive, one thread per connection. Any method and path:

  every response     x-upstream: NAME, and Content-Length unless chunked
  request body       read whole (Content-Length or chunked, trailers ignored)
  x-status: N        answer with status N (default 200)
  x-fail-upstream: NAME  answer 503 when NAME is this upstream's name (one
                     bad endpoint among several)
  x-fail-first: K    the first K attempts this server sees with the same
                     x-request-id get x-fail-status (default 503)
  x-delay-ms: N      sleep N ms before answering
  x-reset: 1         close the socket with RST (SO_LINGER 0), no response
  x-response-bytes: N  body is N bytes of 'a'
  x-chunked-response: 1  send the body chunked, in 3 pieces, with the
                     trailer x-trailer: done
  /echo...           body is the request body, application/octet-stream
  /headers...        JSON {method, target, version, headers: [[name, value]]
                     in wire order, trailers: [[name, value]]}
  otherwise          body is NAME + "\\n"

GET /__stats answers JSON {name, requests, by_path, attempts, connections,
max_in_flight} and POST /__reset clears it; neither is counted as a request
(connections counts every connection accepted, the asking one included;
max_in_flight is the most requests handled at once).
"""

import argparse
import http.server
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse

# No body, and no Content-Length, in these responses (RFC 9110 8.6).
_NO_BODY_STATUSES = {204, 304}


class Stats:
    """Counters shared by the connection threads."""

    def __init__(self, name):
        self.name = name
        self._lock = threading.Lock()
        self._requests = 0
        self._by_path = {}
        self._attempts = {}
        self._connections = 0
        self._in_flight = 0
        self._max_in_flight = 0

    def connected(self):
        with self._lock:
            self._connections += 1

    def begin(self):
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def end(self):
        with self._lock:
            self._in_flight -= 1

    def count(self, path, request_id):
        """Counts one request; returns the attempt number for request_id."""
        with self._lock:
            self._requests += 1
            self._by_path[path] = self._by_path.get(path, 0) + 1
            if request_id is None:
                return 0
            n = self._attempts.get(request_id, 0) + 1
            self._attempts[request_id] = n
            return n

    def snapshot(self):
        with self._lock:
            return {
                "name": self.name,
                "requests": self._requests,
                "by_path": dict(self._by_path),
                "attempts": dict(self._attempts),
                "connections": self._connections,
                "max_in_flight": self._max_in_flight,
            }

    def reset(self):
        with self._lock:
            self._requests = 0
            self._by_path.clear()
            self._attempts.clear()
            self._connections = 0
            self._max_in_flight = self._in_flight


class BadRequest(Exception):
    pass


class UpstreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response, and no Nagle delay between requests on a
    # kept-alive connection.
    disable_nagle_algorithm = True
    server_version = "nodemesh-test-upstream"
    sys_version = ""

    # Every method goes through the same handler; BaseHTTPRequestHandler
    # looks up do_<METHOD>.
    def __getattr__(self, attr):
        if attr.startswith("do_"):
            return self._handle
        raise AttributeError(attr)

    def log_request(self, code="-", size="-"):
        pass  # errors still go through log_error

    def setup(self):
        super().setup()
        self.server.stats.connected()

    # ------------------------------------------------------------ body
    def _read_body(self):
        """Returns (body bytes, trailers as [[name, value]])."""
        te = self.headers.get_all("Transfer-Encoding") or []
        codings = [c.strip().lower() for v in te for c in v.split(",")
                   if c.strip()]
        if codings:
            if codings[-1] != "chunked":
                raise BadRequest("transfer coding other than chunked last")
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b"", []
        try:
            n = int(length.strip())
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
        if n < 0:
            raise BadRequest("negative Content-Length")
        body = self.rfile.read(n)
        if len(body) != n:
            raise BadRequest("body cut short")
        return body, []

    def _read_line(self):
        line = self.rfile.readline(65537)
        if not line.endswith(b"\n"):
            raise BadRequest("chunk framing cut short or too long")
        return line.rstrip(b"\r\n")

    def _read_chunked(self):
        parts = []
        while True:
            size_field = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise BadRequest("invalid chunk size") from None
            if size < 0:
                raise BadRequest("invalid chunk size")
            if size == 0:
                break
            data = self.rfile.read(size)
            if len(data) != size:
                raise BadRequest("chunk cut short")
            parts.append(data)
            if self._read_line() != b"":
                raise BadRequest("missing CRLF after chunk data")
        trailers = []
        while True:
            line = self._read_line()
            if not line:
                break
            name, sep, value = line.partition(b":")
            if not sep:
                raise BadRequest("invalid trailer field")
            trailers.append([name.decode("latin-1"),
                             value.strip().decode("latin-1")])
        return b"".join(parts), trailers

    # ------------------------------------------------------------ response
    def _send(self, status, body, content_type="text/plain", chunked=False):
        head = ["%s %d %s" % (self.protocol_version, status,
                              self.responses.get(status, ("",))[0]),
                "x-upstream: %s" % self.server.stats.name,
                "Date: %s" % self.date_time_string()]
        no_body = status in _NO_BODY_STATUSES or 100 <= status < 200
        if self.close_connection:
            head.append("Connection: close")
        if not no_body:
            head.append("Content-Type: %s" % content_type)
            if chunked:
                head.append("Transfer-Encoding: chunked")
                head.append("Trailer: x-trailer")
            else:
                head.append("Content-Length: %d" % len(body))
        out = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if no_body or self.command == "HEAD":
            pass
        elif chunked:
            third = (len(body) + 2) // 3
            for i in range(3):
                piece = body[i * third:(i + 1) * third]
                if piece:  # an empty chunk would end the body
                    out += b"%x\r\n%s\r\n" % (len(piece), piece)
            out += b"0\r\nx-trailer: done\r\n\r\n"
        else:
            out += body
        self.wfile.write(out)

    def _reset(self):
        # RST instead of FIN: linger on with a zero timeout, then close. The
        # buffered reader holds a reference to the socket, so close it first
        # or the descriptor stays open.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()
        self.connection.close()

    def _header_int(self, name, default):
        value = self.headers.get(name)
        if value is None:
            return default
        try:
            return int(value.strip())
        except ValueError:
            raise BadRequest("header %s is not a number" % name) from None

    def _handle(self):
        try:
            self._respond()
        except BadRequest as e:
            self.close_connection = True
            self._send(400, ("%s\n" % e).encode())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _respond(self):
        stats = self.server.stats
        body, trailers = self._read_body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/__stats" and self.command == "GET":
            self._send(200, json.dumps(stats.snapshot()).encode(),
                       "application/json")
            return
        if path == "/__reset" and self.command == "POST":
            stats.reset()
            self._send(200, b"reset\n")
            return

        request_id = self.headers.get("x-request-id")
        attempt = stats.count(path, request_id)
        delay_ms = self._header_int("x-delay-ms", 0)
        if delay_ms > 0:
            stats.begin()
            try:
                time.sleep(delay_ms / 1000.0)
            finally:
                stats.end()
        if self.headers.get("x-reset", "").strip() == "1":
            self._reset()
            return

        status = self._header_int("x-status", 200)
        if self.headers.get("x-fail-upstream", "").strip() == stats.name:
            status = 503
        fail_first = self._header_int("x-fail-first", 0)
        if fail_first > 0 and attempt <= fail_first:
            status = self._header_int("x-fail-status", 503)
        if not 100 <= status <= 999:
            raise BadRequest("x-status out of range")

        content_type = "text/plain"
        if path.startswith("/echo"):
            out, content_type = body, "application/octet-stream"
        elif path.startswith("/headers"):
            out = json.dumps({
                "method": self.command,
                "target": self.path,
                "version": self.request_version,
                "headers": [[k, v] for k, v in self.headers.items()],
                "trailers": trailers,
            }).encode()
            content_type = "application/json"
        else:
            out = ("%s\n" % stats.name).encode()
        n = self._header_int("x-response-bytes", -1)
        if n >= 0:
            out, content_type = b"a" * n, "application/octet-stream"
        chunked = self.headers.get("x-chunked-response", "").strip() == "1"
        self._send(status, out, content_type, chunked)


class UpstreamServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address, name):
        self.stats = Stats(name)
        super().__init__(address, UpstreamHandler)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Repeat --name/--port pairs to serve several upstreams from one process
    # (each with its own counters), e.g. one per virtual node of a test.
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--name", action="append", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    if len(args.port) != len(args.name):
        parser.error("give one --port per --name")
    if ":" in args.host:
        UpstreamServer.address_family = socket.AF_INET6
    servers = [UpstreamServer((args.host, port), name)
               for name, port in zip(args.name, args.port)]
    for name, server in zip(args.name, servers):
        print("ready %s %d" % (name, server.server_address[1]), flush=True)
    threads = [threading.Thread(target=s.serve_forever, daemon=True)
               for s in servers[1:]]
    for t in threads:
        t.start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for s in servers:
            s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
