#!/usr/bin/python3
"""The shop demo's services (stdlib; the cart and the frontend's calls to it
also Debian's python3-grpcio, which loads under /usr/bin/python3 only). Each
runs as a workload of the mesh (`nodemeshctl run`), knowing nothing of the
mesh: it calls other services by name and nodemesh routes, balances, retries
and counts.

  shop_services.py frontend  ADDRESS PORT   HTTP: GET / -> product + stock,
                                            GET /cart/USER[/add/SKU] -> cart
  shop_services.py product   ADDRESS PORT VERSION
  shop_services.py inventory ADDRESS PORT   TCP: "STOCK <sku>\\n" -> "<n>\\n"
  shop_services.py cart      ADDRESS PORT [FLAKY]
                                            gRPC shop.Cart: AddItem, GetCart;
                                            every FLAKY-th call (0: none)
                                            fails UNAVAILABLE, for the mesh
                                            to retry
"""

import http.client
import http.server
import json
import os
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


# gRPC without generated code: service shop.Cart, messages are JSON bytes.
#   AddItem {"user": U, "sku": S, "qty": N} -> the cart after adding
#   GetCart {"user": U}                     -> {"user": U, "items": {S: N}}
CART_SERVICE = "shop.Cart"


def _grpc():
    # grpcio's own DNS resolver (c-ares) would ask the resolver over its own
    # sockets; the native one uses getaddrinfo like the rest of this file.
    os.environ.setdefault("GRPC_DNS_RESOLVER", "native")
    import grpc  # pylint: disable=import-outside-toplevel
    return grpc


class _CartClient:
    """One channel to cart.shop.local:9090, shared by the frontend's threads
    (HTTP/2: the calls are streams on one connection through the mesh)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._stubs = None

    def call(self, method, request, headers):
        grpc = _grpc()
        with self._lock:
            if self._stubs is None:
                channel = grpc.insecure_channel(
                    "cart.shop.local:9090", options=[("grpc.enable_retries", 0)])
                self._stubs = {m: channel.unary_unary("/%s/%s" % (CART_SERVICE, m))
                               for m in ("AddItem", "GetCart")}
        metadata = [(h, v) for h, v in headers.items() if v]
        reply = self._stubs[method](json.dumps(request).encode(), timeout=5,
                                    metadata=metadata)
        return json.loads(reply)


class Frontend(_Handler):
    _local = threading.local()
    _cart = _CartClient()

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

    def _cart_call(self):
        # /cart/USER -> GetCart; /cart/USER/add/SKU -> AddItem (qty 1).
        parts = self.path.strip("/").split("/")
        if len(parts) == 2:
            method, request = "GetCart", {"user": parts[1]}
        elif len(parts) == 4 and parts[2] == "add":
            method, request = "AddItem", {"user": parts[1], "sku": parts[3], "qty": 1}
        else:
            self._reply(404, {"error": "GET /cart/USER or /cart/USER/add/SKU"})
            return
        headers = {h: self.headers[h] for h in _PROPAGATE}
        try:
            self._reply(200, self._cart.call(method, request, headers))
        except _grpc().RpcError as e:
            self._reply(502, {"error": "cart %s: %s %s" % (method, e.code().name, e.details())})

    def do_GET(self):
        if self.path.startswith("/cart/"):
            self._cart_call()
            return
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


class Cart:
    """shop.Cart, in memory. Every `flaky`-th call (counting every attempt)
    fails with UNAVAILABLE before doing anything, as a restarting server
    would: the route's grpcRetryEvents make the mesh try again."""

    def __init__(self, flaky):
        self.flaky = flaky
        self.lock = threading.Lock()
        self.calls = 0
        self.carts = {}

    def _begin(self, ctx):
        grpc = _grpc()
        with self.lock:
            self.calls += 1
            fail = self.flaky and self.calls % self.flaky == 0
        if fail:
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "cart: flaky by design")

    def add_item(self, req, ctx):
        self._begin(ctx)
        r = json.loads(req)
        with self.lock:
            items = self.carts.setdefault(r["user"], {})
            items[r["sku"]] = items.get(r["sku"], 0) + int(r.get("qty", 1))
            return json.dumps({"user": r["user"], "items": items}).encode()

    def get_cart(self, req, ctx):
        self._begin(ctx)
        user = json.loads(req)["user"]
        with self.lock:
            return json.dumps({"user": user, "items": self.carts.get(user, {})}).encode()


def serve_cart(address, port, flaky):
    grpc = _grpc()
    from concurrent import futures  # pylint: disable=import-outside-toplevel
    cart = Cart(flaky)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(CART_SERVICE, {
        "AddItem": grpc.unary_unary_rpc_method_handler(cart.add_item),
        "GetCart": grpc.unary_unary_rpc_method_handler(cart.get_cart),
    }),))
    server.add_insecure_port("%s:%d" % (address, port))
    server.start()
    print("ready cart", address, port, flush=True)
    server.wait_for_termination()


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
    elif kind == "cart":
        serve_cart(address, port, int(sys.argv[4]) if len(sys.argv) > 4 else 0)
        return
    else:
        sys.exit("unknown service " + kind)
    print("ready", kind, address, port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
