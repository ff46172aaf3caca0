# hostile.py: hostile DNS input from inside the sandbox. Each check prints
# "blocked: WHAT" when the supervisor held, "ESCAPED: WHAT" when not.
import socket, struct
from dnsq import query, ask, recvall

def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True

# UDP: garbage, a compression loop, an oversized packet: no answer to any,
# and the server still answers the next query.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(30)
for bad in [b"\xc0\xc0\xc0", b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", b"\x00" * 9000]:
    u.sendto(bad, ("127.0.0.1", 53))
u.sendto(query("ok.test", 1, qid=99), ("127.0.0.1", 53))
a = u.recv(4096)
print("blocked: udp hostile packets" if a[:2] == b"\x00\x63" else "ESCAPED: udp: an answer to a hostile packet")

# TCP: a message announced as 65535 bytes is not read: the connection ends.
s = socket.create_connection(("127.0.0.1", 53), timeout=30)
s.sendall(b"\xff\xff" + b"\x00" * 100)
print("blocked: tcp oversized message" if closed(s) else "ESCAPED: tcp oversized message read")
# TCP: a looping compression pointer ends the connection, unanswered.
s = socket.create_connection(("127.0.0.1", 53), timeout=30)
loop = b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"
s.sendall(struct.pack(">H", len(loop)) + loop)
print("blocked: tcp compression loop" if closed(s) else "ESCAPED: tcp compression loop answered")

# TCP flood: 100 connections held open; the supervisor serves a bounded
# number and closes the rest at once.
held, served, refused = [], 0, 0
pkt = query("ok.test", 1)
for i in range(100):
    c = socket.create_connection(("127.0.0.1", 53), timeout=30)
    try:
        c.sendall(struct.pack(">H", len(pkt)) + pkt)
        n = struct.unpack(">H", recvall(c, 2))[0]
        recvall(c, n)
        served += 1
        held.append(c)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        refused += 1
        c.close()
print("tcp flood: served %d, closed %d" % (served, refused))
print("blocked: tcp flood" if served <= 16 else "ESCAPED: tcp flood: %d connections served at once" % served)
for c in held:
    c.close()
# Once the flood is gone, TCP is served again.
for i in range(1000):
    try:
        ask("tcp", query("ok.test", 1))
        print("ok: tcp served after the flood")
        break
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass
