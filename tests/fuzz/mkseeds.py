#!/usr/bin/env python3
"""tests/fuzz/mkseeds.py: write the seed inputs of the protobuf fuzz targets
(fuzz_solvestatus, fuzz_session) into tests/fuzz/corpus/{solvestatus,
session}/gen-*. The messages are encoded here by hand from the field numbers
of proto/*.proto (protobuf's wire format: varints and length-delimited
fields), so no protobuf package is needed. Run from anywhere; the files it
writes are committed, this script is how they were made."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    if n < 0:
        n += 1 << 64
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def f_varint(num, v):
    return varint(num << 3) + varint(v)


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(num << 3 | 2) + varint(len(b)) + b


def frame(msg):
    """The targets' framing: a 2-byte little-endian length, the bytes."""
    return struct.pack("<H", len(msg)) + msg


def ts(sec, nanos=0):
    return f_varint(1, sec) + f_varint(2, nanos)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "gen-" + name), "wb") as f:
        f.write(data)


# ---- moby.buildkit.v1.StatusResponse (proto/control.proto) ----------------
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def vertex(digest, name, inputs=(), started=None, completed=None, cached=False, error=""):
    m = f_bytes(1, digest)
    for i in inputs:
        m += f_bytes(2, i)
    m += f_bytes(3, name)
    if cached:
        m += f_varint(4, 1)
    if started is not None:
        m += f_bytes(5, ts(*started))
    if completed is not None:
        m += f_bytes(6, ts(*completed))
    if error:
        m += f_bytes(7, error)
    return m


def vstatus(id_, vertex_, name="", current=0, total=0, started=None, completed=None):
    m = f_bytes(1, id_) + f_bytes(2, vertex_)
    if name:
        m += f_bytes(3, name)
    m += f_varint(4, current) + f_varint(5, total) + f_bytes(6, ts(1795168801))
    if started is not None:
        m += f_bytes(7, ts(*started))
    if completed is not None:
        m += f_bytes(8, ts(*completed))
    return m


def vlog(vertex_, msg, stream=1):
    return f_bytes(1, vertex_) + f_bytes(2, ts(1795168802, 5)) + f_varint(3, stream) + f_bytes(4, msg)


def vwarning(vertex_, short, details=(), url="", filename="", line=0):
    m = f_bytes(1, vertex_) + f_varint(2, 1) + f_bytes(3, short)
    for d in details:
        m += f_bytes(4, d)
    if url:
        m += f_bytes(5, url)
    if filename:
        m += f_bytes(6, f_bytes(1, filename) + f_bytes(2, "FROM x\n"))
    if line:
        pos = f_varint(1, line) + f_varint(2, 3)
        m += f_bytes(7, f_bytes(1, pos) + f_bytes(2, pos))
    return m


def status(vertexes=(), statuses=(), logs=(), warnings=()):
    m = b""
    for v in vertexes:
        m += f_bytes(1, v)
    for s in statuses:
        m += f_bytes(2, s)
    for l in logs:
        m += f_bytes(3, l)
    for w in warnings:
        m += f_bytes(4, w)
    return m


T = 1795168800
build = [
    status(vertexes=[vertex(D1, "[internal] load build definition from Dockerfile",
                            started=(T, 1))]),
    status(vertexes=[vertex(D1, "[internal] load build definition from Dockerfile",
                            started=(T, 1), completed=(T, 900))]),
    status(vertexes=[vertex(D2, "[1/2] FROM docker.io/library/busybox", inputs=[D1],
                            started=(T + 1, 0))],
           statuses=[vstatus("resolve docker.io/library/busybox", D2, "resolve", 0, 0,
                             started=(T + 1, 0)),
                     vstatus("sha256:" + "3" * 64, D2, "", 1024, 4096,
                             started=(T + 1, 0))]),
    status(logs=[vlog(D2, b"hello\n"), vlog(D2, b"partial line", 2),
                 vlog(D2, b"\x1b[31mred\x1b[0m\r\nprogress\r")]),
    status(warnings=[vwarning(D2, b"FromAsCasing: 'as' and 'FROM' keywords' casing do not match",
                              [b"detail one", b""], "https://docs.docker.com/go/x/",
                              "Dockerfile", 2)]),
    status(vertexes=[vertex(D2, "[1/2] FROM docker.io/library/busybox", inputs=[D1],
                            started=(T + 1, 0), completed=(T + 2, 0), cached=True),
                     vertex("sha256:" + "4" * 64, "[2/2] RUN false", inputs=[D2],
                            started=(T + 2, 0), completed=(T + 3, 0),
                            error="process \"/bin/sh -c false\" did not complete successfully: exit code: 1")]),
]
write("solvestatus", "build", b"".join(frame(m) for m in build))
write("solvestatus", "one-message", frame(build[2]))
write("solvestatus", "odd-times", frame(status(
    vertexes=[vertex(D1, "", started=(-5, -1), completed=(1 << 40, 999999999))],
    statuses=[vstatus("", "", "", -1, -(1 << 40))],
    logs=[vlog("", b"", 0), vlog("unknown-vertex", b"x" * 300, 7)],
    warnings=[vwarning("", b"", filename="", line=-3)])))

# ---- the session's calls (fuzz_session.c) ----------------------------------


def call(kind, md=(), msgs=()):
    out = bytes([kind, len(md)])
    for k, v in md:
        out += bytes([len(k)]) + k.encode() + bytes([len(v)]) + v.encode()
    return out + b"".join(frame(m) for m in msgs)


write("session", "secret-file", call(0, msgs=[f_bytes(1, "file")]))
write("session", "secret-env", call(0, msgs=[f_bytes(1, "env") + f_bytes(2, f_bytes(1, "k") + f_bytes(2, "v"))]))
write("session", "secret-missing", call(0, msgs=[f_bytes(1, "nope")]))
write("session", "auth-ghcr", call(1, msgs=[f_bytes(1, "ghcr.io")]))
write("session", "auth-anon", call(1, msgs=[f_bytes(1, "docker.io")]))
write("session", "ssh-default", call(2, msgs=[f_bytes(1, "")]))
write("session", "ssh-other", call(2, md=[("buildkit.ssh.id", "x")], msgs=[f_bytes(1, "other")]))

# fsutil.types.Packet (proto/fsutil.proto): type 1, stat 2, ID 3, data 4
STAT, REQ, DATA, FIN, ERR = 0, 1, 2, 3, 4
GO_DIR, GO_SYMLINK = 1 << 31, 1 << 27


def packet(type_, stat=None, id_=None, data=None):
    m = f_varint(1, type_) if type_ else b""
    if stat is not None:
        m += f_bytes(2, stat)
    if id_ is not None:
        m += f_varint(3, id_)
    if data is not None:
        m += f_bytes(4, data)
    return m


def stat(path, mode, size=0, linkname="", mtime=1795168800 * 10**9):
    m = f_bytes(1, path) + f_varint(2, mode) + f_varint(3, 1000) + f_varint(4, 1000)
    m += f_varint(5, size) + f_varint(6, mtime)
    if linkname:
        m += f_bytes(7, linkname)
    return m


ctx = [("dir-name", "context")]
write("session", "filesync-all", call(3, ctx, [packet(REQ, id_=i) for i in range(7)] + [packet(FIN)]))
write("session", "filesync-filtered", call(3, ctx + [("include-patterns", "sub"),
                                                     ("exclude-patterns", "*.go"),
                                                     ("followpaths", "link")],
                                           [packet(REQ, id_=2), packet(FIN)]))
write("session", "filesync-err", call(3, ctx, [packet(ERR, data=b"daemon says no")]))
write("session", "filesync-bad-dir", call(3, [("dir-name", "../etc")], [packet(FIN)]))
send = [
    packet(STAT, stat("d", GO_DIR | 0o755)),
    packet(STAT, stat("d/f", 0o644, 5)),
    packet(STAT, stat("d/l", GO_SYMLINK | 0o777, linkname="f")),
    packet(STAT, stat("e", 0o600, 3)),
    packet(STAT),
    packet(DATA, id_=1, data=b"hello"),
    packet(DATA, id_=1, data=b""),
    packet(DATA, id_=3, data=b"abc"),
    packet(DATA, id_=3, data=b""),
    packet(FIN),
]
write("session", "filesend-local", call(4, msgs=send))
write("session", "filesend-escape", call(4, msgs=[packet(STAT, stat("../../up", 0o644, 1)),
                                                  packet(STAT, stat("a/../../b", GO_DIR | 0o700)),
                                                  packet(STAT), packet(DATA, id_=0, data=b"x"),
                                                  packet(FIN)]))
# BytesMessage (data 1) stream of a tar export
write("session", "filesend-raw", call(5, msgs=[f_bytes(1, b"tar bytes " * 10), f_bytes(1, b""),
                                              f_bytes(1, b"more")]))
