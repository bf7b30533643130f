#!/usr/bin/python3
"""The shop demo's services (stdlib only). Each runs as a workload of the
mesh (`nodemeshctl run`), knowing nothing of the mesh: it calls other
services by name and nodemesh routes, balances, retries and counts.

  shop_services.py frontend  ADDRESS PORT   HTTP: GET / -> product + stock
  shop_services.py product   ADDRESS PORT VERSION
  shop_services.py inventory ADDRESS PORT   TCP: "STOCK <sku>\\n" -> "<n>\\n"
"""

import http.client
import http.server
import json
import socket
import socketserver
import sys
import threading

# Headers a service passes on so one call is traced across the mesh.
_PROPAGATE = ("traceparent", "tracestate", "x-request-id")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second
    # waits for the peer's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, body):
        data = json.dumps(body).encode() + b"\n"
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Product(_Handler):
    version = "v1"

    def do_GET(self):
        sku = self.path.rstrip("/").rsplit("/", 1)[-1] or "42"
        self._reply(200, {"sku": sku, "name": "teapot", "version": self.version,
                          "price": 12.5 if self.version == "v1" else 11.0})


def _stock(sku):
    # A plain TCP call by name: the mesh DNS gives the VIP, and connect()
    # goes straight to the inventory workload (DIRECT: no proxy on the way).
    with socket.create_connection(("inventory.shop.local", 7000), 2) as s:
        s.sendall(b"STOCK %s\n" % sku.encode())
        return int(s.makefile().readline().strip() or -1)


class Frontend(_Handler):
    _local = threading.local()

    def _product(self, sku):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(
                "product.shop.local", 8080, timeout=5)
        headers = {h: self.headers[h] for h in _PROPAGATE if self.headers[h]}
        try:
            conn.request("GET", "/product/" + sku, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError):
            self._local.conn = None
            conn.close()
            raise

    def do_GET(self):
        sku = "42"
        try:
            status, product = self._product(sku)
            stock = _stock(sku)
        except (OSError, http.client.HTTPException, ValueError) as e:
            self._reply(502, {"error": str(e)})
            return
        self._reply(200 if status == 200 else 502,
                    {"product": product, "stock": stock, "frontend": "ok"})


class Inventory(socketserver.StreamRequestHandler):
    disable_nagle_algorithm = True
    def handle(self):
        for line in self.rfile:
            parts = line.decode(errors="replace").split()
            n = 7 if len(parts) == 2 and parts[0] == "STOCK" else -1
            self.wfile.write(b"%d\n" % n)


class _Threading(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops SYNs under wrk: 1 s stalls


class _HttpServer(http.server.ThreadingHTTPServer):
    request_queue_size = 128


def main():
    kind, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "product":
        Product.version = sys.argv[4]
        server = _HttpServer((address, port), Product)
    elif kind == "frontend":
        server = _HttpServer((address, port), Frontend)
    elif kind == "inventory":
        server = _Threading((address, port), Inventory)
    else:
        sys.exit("unknown service " + kind)
    print("ready", kind, address, port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
