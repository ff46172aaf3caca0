# dnsq.py PROTO NAME [TYPE]: one raw DNS query to 127.0.0.1:53 over udp or
# tcp; prints "PROTO NAME TYPE rcode=N ancount=N addrs=A,B".
import socket, struct, sys

def query(name, qtype, qid=7):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.encode().split(b"."):
        q += bytes([len(label)]) + label
    return q + b"\x00" + struct.pack(">HH", qtype, 1)

def ask(proto, pkt):
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(30)  # a bound, not an assertion: the answer comes at once
        s.sendto(pkt, ("127.0.0.1", 53))
        return s.recv(4096)
    s = socket.create_connection(("127.0.0.1", 53), timeout=30)
    s.sendall(struct.pack(">H", len(pkt)) + pkt)
    n = struct.unpack(">H", recvall(s, 2))[0]
    return recvall(s, n)

def recvall(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed")
        b += c
    return b

def addrs(a, qlen):
    off, out = 12 + qlen, []
    for _ in range(struct.unpack(">H", a[6:8])[0]):
        rdlen = struct.unpack(">H", a[off + 10:off + 12])[0]
        out.append(socket.inet_ntop(socket.AF_INET if rdlen == 4 else socket.AF_INET6, a[off + 12:off + 12 + rdlen]))
        off += 12 + rdlen
    return out

if __name__ == "__main__":
    proto, name = sys.argv[1], sys.argv[2]
    qtype = {"A": 1, "AAAA": 28, "MX": 15}[sys.argv[3] if len(sys.argv) > 3 else "A"]
    pkt = query(name, qtype)
    a = ask(proto, pkt)
    print("%s %s %s rcode=%d ancount=%d addrs=%s" % (proto, name, sys.argv[3] if len(sys.argv) > 3 else "A",
          a[3] & 15, struct.unpack(">H", a[6:8])[0], ",".join(addrs(a, len(pkt) - 12))))
