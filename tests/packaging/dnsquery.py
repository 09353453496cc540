#!/usr/bin/env python3
"""Ask a DNS server for an A record and print the addresses: dnsquery.py HOST PORT NAME."""
import random
import socket
import struct
import sys


def query(host, port, name):
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    for _ in range(10):
        try:
            s.sendto(q, (host, port))
            data, _ = s.recvfrom(512)
            break
        except (socket.timeout, ConnectionRefusedError):
            continue
    else:
        raise SystemExit("no answer from %s:%d" % (host, port))
    rid, flags, qd, an = struct.unpack(">HHHH", data[:8])
    if rid != qid:
        raise SystemExit("wrong query id")
    off = 12
    for _ in range(qd):  # skip the question
        while data[off]:
            off += data[off] + 1
        off += 5
    out = []
    for _ in range(an):
        if data[off] & 0xC0 == 0xC0:
            off += 2
        else:
            while data[off]:
                off += data[off] + 1
            off += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[off:off + 10])
        off += 10
        if rtype == 1:
            out.append(socket.inet_ntoa(data[off:off + rdlen]))
        off += rdlen
    return out


if __name__ == "__main__":
    print(" ".join(query(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
