#!/usr/bin/python3
"""A one-name DNS server for the mesh DNS's forwarding test (stdlib only).

    dns_upstream.py HOST PORT NAME IPV4

Answers A queries for NAME with IPV4 and everything else with NXDOMAIN;
prints "ready" once bound.
"""
import socket
import struct
import sys

host, port, name, ip = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, port))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 12:
        continue
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
        i += 1 + q[i]
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    ok = ".".join(labels).lower() == name and qtype == 1
    flags = 0x8180 if ok else 0x8183
    head = q[:2] + struct.pack(">HHHHH", flags, 1, 1 if ok else 0, 0, 0)
    answer = (b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) +
              socket.inet_aton(ip)) if ok else b""
    s.sendto(head + question + answer, peer)
