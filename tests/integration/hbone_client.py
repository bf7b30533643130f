#!/usr/bin/python3
"""A client of nodemesh's tunnel port, for tests: TLS 1.3 with ALPN h2 and
a certificate of the test's choosing, then one HTTP/2 CONNECT (the HBONE
convention) to an endpoint, some bytes sent, the answer read.

Prints one line: "status <code> <x-nodemesh-refusal or ->" and then, on a
2xx, the bytes the endpoint sent back (until it closes or --timeout);
"tls-error <message>" when the handshake or the connection failed.
Exit status 0 on a 2xx, 1 on another status, 2 on a TLS error.

Runs under Debian's /usr/bin/python3 (python3-h2, installed by
scripts/install-deps).
"""

import argparse
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--connect", required=True, help="host:port of the tunnel")
    p.add_argument("--sni", default="", help="server name (target identity)")
    p.add_argument("--cert", default="")
    p.add_argument("--key", default="")
    p.add_argument("--ca", required=True, help="roots to verify the server")
    p.add_argument("--authority", required=True, help="CONNECT ip:port")
    p.add_argument("--send", default="", help="bytes to send once connected")
    p.add_argument("--timeout", type=float, default=5.0)
    a = p.parse_args()

    host, port = a.connect.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(a.ca)
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((host, int(port)), timeout=a.timeout)
    try:
        tls = ctx.wrap_socket(raw, server_hostname=a.sni or None)
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                      # CONNECT has no :path / :scheme
                                      validate_outbound_headers=False))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"),
                                (":authority", a.authority)])
        tls.sendall(conn.data_to_send())
        status, reason, body, ended = None, "-", b"", False
        deadline = time.time() + a.timeout
        sent = False
        while not ended and time.time() < deadline:
            data = tls.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    h = dict(ev.headers)
                    status = int(h.get(":status", "0"))
                    reason = h.get("x-nodemesh-refusal", "-")
                    if 200 <= status < 300 and a.send and not sent:
                        conn.send_data(sid, a.send.encode(), end_stream=True)
                        sent = True
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(len(ev.data), sid)
                elif isinstance(ev, (h2.events.StreamEnded,
                                     h2.events.StreamReset,
                                     h2.events.ConnectionTerminated)):
                    ended = True
            out = conn.data_to_send()
            if out:
                tls.sendall(out)
    except (ssl.SSLError, OSError) as e:
        print("tls-error", str(e).replace("\n", " "))
        return 2
    if status is None:
        print("tls-error no response (connection closed)")
        return 2
    print("status", status, reason)
    sys.stdout.write(body.decode(errors="replace"))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
