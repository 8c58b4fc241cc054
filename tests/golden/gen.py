#!/usr/bin/env python3
"""gen.py: writes the recorded event streams tests/golden/*.jsonl.

The streams are in the canonical form of the json renderer (schema 1,
docs/events.md): keys in the renderer's order, compact separators, times in
RFC 3339 UTC with nanoseconds, and job.finished metrics equal to what the
core's metrics collector computes, so that `kiln replay --progress=json`
gives every file back byte for byte. After editing a scenario:

    tests/golden/gen.py && tests/golden/run.sh --update

and review the diff of the .plain files. Only needed to change the
inputs; the test itself (run.sh) needs no Python. Keep control characters
other than \n and \t out of text log data: Python escapes them as \u001b,
jansson as \u001B, and the round-trip test would (rightly) notice.
"""
import base64
import datetime
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1_795_168_800 * 10**9  # 2026-11-20T10:00:00Z
MS = 10**6
S = 10**9


def ts(ns):
    secs, frac = divmod(ns, S)
    d = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % frac


def digest(*parts):
    return "sha256:" + hashlib.sha256("/".join(parts).encode()).hexdigest()


class Job:
    def __init__(self, id, target, platform, builder, number):
        self.obj = {"id": id, "target": target, "platform": platform,
                    "builder": builder, "number": number}
        self.started = 0
        self.vtx = {}  # digest -> [completed, cached, failed]
        self.warnings = 0
        self.log_bytes = 0
        self.xfer = {}  # (vertex, id) -> last current of "transferring ..."


class Stream:
    def __init__(self, name):
        self.name = name
        self.lines = []

    def emit(self, type, t, job, fields):
        obj = {"schema": 1, "type": type, "time": ts(t), "job": dict(job.obj)}
        obj.update(fields)
        self.lines.append(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))

    def job_started(self, job, t, steps=0, frontend="dockerfile", backend="buildkit",
                    jobs=0):
        job.started = t
        f = {}
        if frontend:
            f["frontend"] = frontend
        if backend:
            f["backend"] = backend
        if steps:
            f["steps"] = steps
        if jobs:
            f["jobs"] = jobs
        self.emit("job.started", t, job, f)

    def job_finished(self, job, t, status=0, error=None, image=None, config=None):
        f = {"status": status}
        if error is not None:
            f["error"] = error
        if image:
            f["image_digest"] = image
        if config:
            f["config_digest"] = config
        v = job.vtx.values()
        f["metrics"] = {
            "duration_ns": t - job.started if job.started and t > job.started else 0,
            "vertices": len(job.vtx),
            "completed": sum(1 for x in v if x[0]),
            "cached": sum(1 for x in v if x[1]),
            "failed": sum(1 for x in v if x[2]),
            "warnings": job.warnings,
            "log_bytes": job.log_bytes,
        }
        # as the collector: the last count of each "transferring ..." item
        if sum(job.xfer.values()):
            f["context_bytes"] = sum(job.xfer.values())
        self.emit("job.finished", t, job, f)

    def vertex(self, job, t, dg, name, inputs=(), started=0, completed=0,
               cached=False, error=None):
        st = job.vtx.setdefault(dg, [False, False, False])
        st[0] |= bool(completed)
        st[1] |= cached
        st[2] |= bool(error)
        f = {"digest": dg, "name": name, "inputs": list(inputs)}
        if started:
            f["started"] = ts(started)
        if completed:
            f["completed"] = ts(completed)
        f["cached"] = cached
        if error is not None:
            f["error"] = error
        self.emit("vertex", t, job, f)

    def status(self, job, t, dg, id, current=0, total=0, started=0,
               completed=0, name=None):
        f = {"vertex": dg, "id": id}
        if id.startswith("transferring") and current >= 0:
            job.xfer[(dg, id)] = current
        if name is not None:
            f["name"] = name
        f["current"] = current
        f["total"] = total
        f["timestamp"] = ts(t)
        if started:
            f["started"] = ts(started)
        if completed:
            f["completed"] = ts(completed)
        self.emit("vertex.status", t, job, f)

    def log(self, job, t, dg, data, stream=1):
        if isinstance(data, str):
            data = data.encode()
        job.log_bytes += len(data)
        f = {"vertex": dg, "stream": stream, "timestamp": ts(t)}
        try:
            text = data.decode("utf-8")
            if "\0" in text:
                raise ValueError
            f["data"] = text
        except ValueError:
            f["data_base64"] = base64.b64encode(data).decode()
        self.emit("vertex.log", t, job, f)

    def warning(self, job, t, message, vertex=None, level=1, detail=(),
                url=None, file=None, line=0):
        job.warnings += 1
        f = {}
        if vertex:
            f["vertex"] = vertex
        f["level"] = level
        f["message"] = message
        if detail:
            f["detail"] = list(detail)
        if url:
            f["url"] = url
        if file:
            f["file"] = file
        if line:
            f["line"] = line
        self.emit("warning", t, job, f)

    # A vertex that starts and completes at once (no output of its own).
    def quick(self, job, t, dg, name, dur, inputs=(), cached=False):
        self.vertex(job, t, dg, name, inputs, started=t)
        self.vertex(job, t + dur, dg, name, inputs, started=t, completed=t + dur,
                    cached=cached)

    def write(self):
        with open(os.path.join(HERE, self.name + ".jsonl"), "w") as f:
            for line in self.lines:
                f.write(line + "\n")


def load_definition(s, job, t, tag=""):
    """BuildKit's usual prologue; returns (time, digest of the FROM)."""
    d1 = digest(tag, "dockerfile")
    s.vertex(job, t, d1, "[internal] load build definition from Dockerfile", started=t)
    s.status(job, t + 20 * MS, d1, "transferring dockerfile:", current=412,
             started=t + 5 * MS, completed=t + 20 * MS)
    s.vertex(job, t + 21 * MS, d1, "[internal] load build definition from Dockerfile",
             started=t, completed=t + 21 * MS)
    t += 30 * MS
    d2 = digest(tag, "meta")
    s.quick(job, t, d2, "[internal] load metadata for docker.io/library/alpine:3.20",
            640 * MS)
    t += 650 * MS
    d3 = digest(tag, "dockerignore")
    s.vertex(job, t, d3, "[internal] load .dockerignore", started=t)
    s.status(job, t + 8 * MS, d3, "transferring context:", current=2,
             started=t + 2 * MS, completed=t + 8 * MS)
    s.vertex(job, t + 9 * MS, d3, "[internal] load .dockerignore",
             started=t, completed=t + 9 * MS)
    return t + 10 * MS, d1


def simple():
    """(1) A three-step build: FROM, COPY, RUN, then the export."""
    s = Stream("simple")
    j = Job("default", "default", "", "default", 1)
    t = T0
    s.job_started(j, t, steps=3)
    t, _ = load_definition(s, j, t + 1 * MS)
    base = digest("alpine")
    name = "[1/3] FROM docker.io/library/alpine:3.20@sha256:" + "b" * 64
    s.vertex(j, t, base, name, started=t)
    s.status(j, t + 1 * MS, base, "resolve docker.io/library/alpine:3.20@sha256:" + "b" * 64,
             started=t + 1 * MS, completed=t + 1 * MS)
    s.vertex(j, t + 2 * MS, base, name, started=t, completed=t + 2 * MS)
    t += 5 * MS
    ctx = digest("context")
    s.vertex(j, t, ctx, "[internal] load build context", started=t)
    s.status(j, t + 30 * MS, ctx, "transferring context:", current=1234,
             started=t + 3 * MS, completed=t + 30 * MS)
    s.vertex(j, t + 31 * MS, ctx, "[internal] load build context", started=t,
             completed=t + 31 * MS)
    t += 40 * MS
    cp = digest("copy")
    s.quick(j, t, cp, "[2/3] COPY . /src", 96 * MS, inputs=[base, ctx])
    t += 100 * MS
    run = digest("run")
    rname = "[3/3] RUN make -C /src"
    s.vertex(j, t, run, rname, inputs=[cp], started=t)
    s.log(j, t + 215 * MS, run, "make: Entering directory '/src'\n")
    s.log(j, t + 230 * MS, run, "cc -O2 -o hello hello.c\n")
    s.log(j, t + 1150 * MS, run, "make: Leaving directory '/src'\n")
    s.vertex(j, t + 1203 * MS, run, rname, inputs=[cp], started=t, completed=t + 1203 * MS)
    t += 1210 * MS
    exp = digest("export")
    s.vertex(j, t, exp, "exporting to image", inputs=[run], started=t)
    s.status(j, t + 1 * MS, exp, "exporting layers", started=t + 1 * MS)
    s.status(j, t + 180 * MS, exp, "exporting layers", started=t + 1 * MS,
             completed=t + 180 * MS)
    img = digest("image")
    s.status(j, t + 190 * MS, exp, "writing image " + img, started=t + 185 * MS,
             completed=t + 190 * MS)
    s.status(j, t + 192 * MS, exp, "naming to docker.io/library/hello:latest",
             started=t + 191 * MS, completed=t + 192 * MS)
    s.vertex(j, t + 193 * MS, exp, "exporting to image", inputs=[run], started=t,
             completed=t + 193 * MS)
    s.job_finished(j, t + 200 * MS, image=img, config=digest("config"))
    s.write()


def parallel():
    """(2) Two stages running at once, logs interleaved, one line split
    across chunks, a chunk with several lines, a non-UTF-8 chunk."""
    s = Stream("parallel")
    j = Job("default", "default", "", "default", 1)
    t = T0
    s.job_started(j, t, steps=6)
    t, _ = load_definition(s, j, t + 1 * MS)
    base = digest("alpine")
    s.quick(j, t, base, "[build 1/3] FROM docker.io/library/alpine:3.20", 2 * MS)
    t += 10 * MS
    a = digest("build-run")
    an = "[build 2/3] RUN make all"
    b = digest("docs-run")
    bn = "[docs 2/2] RUN mkdocs build"
    s.vertex(j, t, a, an, inputs=[base], started=t)
    s.vertex(j, t + 3 * MS, b, bn, inputs=[base], started=t + 3 * MS)
    s.log(j, t + 120 * MS, a, "cc -c main.c\n")
    s.log(j, t + 130 * MS, b, "INFO    -  Cleaning site directory\n")
    s.log(j, t + 250 * MS, a, "cc -c util")      # a partial line...
    s.log(j, t + 260 * MS, b, "INFO    -  Building documentation to directory: /site\n")
    s.log(j, t + 400 * MS, a, ".c\ncc -o app main.o util.o\nstrip ")  # ...completed
    s.log(j, t + 410 * MS, b, "WARNING -  A relative path to 'img.png' caf\xe9\n".encode("latin-1"))
    s.log(j, t + 520 * MS, a, "app\n", stream=2)
    s.log(j, t + 900 * MS, b, "INFO    -  Documentation built in 0.77 seconds")  # no newline
    s.vertex(j, t + 905 * MS, b, bn, inputs=[base], started=t + 3 * MS,
             completed=t + 905 * MS)
    s.log(j, t + 1100 * MS, a, "done\n")
    s.vertex(j, t + 1150 * MS, a, an, inputs=[base], started=t, completed=t + 1150 * MS)
    t += 1160 * MS
    c1 = digest("stage-1-copy-app")
    s.quick(j, t, c1, "[stage-1 2/3] COPY --from=build /src/app /usr/bin/app", 40 * MS,
            inputs=[a])
    c2 = digest("stage-1-copy-site")
    s.quick(j, t + 50 * MS, c2, "[stage-1 3/3] COPY --from=docs /site /srv/www", 60 * MS,
            inputs=[b, c1])
    s.job_finished(j, t + 200 * MS)
    s.write()


def failing():
    """(3) A RUN that exits 3 after more than ten lines of output; a
    parallel step is cancelled; the job fails."""
    s = Stream("failing")
    j = Job("default", "default", "", "default", 1)
    t = T0
    s.job_started(j, t, steps=5)
    t, _ = load_definition(s, j, t + 1 * MS)
    base = digest("alpine")
    s.quick(j, t, base, "[build 1/5] FROM docker.io/library/alpine:3.20", 2 * MS)
    t += 10 * MS
    ok = digest("build-2")
    s.quick(j, t, ok, "[build 2/5] WORKDIR /src", 20 * MS, inputs=[base])
    t += 30 * MS
    bad = digest("build-3")
    bn = "[build 3/5] RUN ./configure && exit 3"
    other = digest("tools-2")
    on = "[tools 2/2] RUN apk add --no-cache git"
    s.vertex(j, t, bad, bn, inputs=[ok], started=t)
    s.vertex(j, t + 1 * MS, other, on, inputs=[base], started=t + 1 * MS)
    s.log(j, t + 90 * MS, other, "fetch https://dl-cdn.alpinelinux.org/alpine/v3.20/main/x86_64/APKINDEX.tar.gz\n")
    for i in range(12):
        s.log(j, t + (100 + 10 * i) * MS, bad, "checking for feature %02d... yes\n" % i)
    s.log(j, t + 230 * MS, bad, "configure: error: libfoo not found\n", stream=2)
    err = 'process "/bin/sh -c ./configure && exit 3" did not complete successfully: exit code: 3'
    s.vertex(j, t + 240 * MS, bad, bn, inputs=[ok], started=t, completed=t + 240 * MS,
             error=err)
    s.vertex(j, t + 245 * MS, other, on, inputs=[base], started=t + 1 * MS,
             completed=t + 245 * MS, error="context canceled")
    s.job_finished(j, t + 260 * MS, status=-11, error="failed to solve: " + err)
    s.write()


def cached():
    """(4) A rebuild where every step comes from the cache."""
    s = Stream("cached")
    j = Job("default", "default", "", "default", 1)
    t = T0
    s.job_started(j, t, steps=3)
    t, _ = load_definition(s, j, t + 1 * MS)
    base = digest("alpine")
    prev = base
    s.quick(j, t, base, "[1/3] FROM docker.io/library/alpine:3.20@sha256:" + "b" * 64,
            0, cached=True)
    ctx = digest("context")
    s.vertex(j, t + 1 * MS, ctx, "[internal] load build context", started=t + 1 * MS)
    s.status(j, t + 9 * MS, ctx, "transferring context:", current=87,
             started=t + 2 * MS, completed=t + 9 * MS)
    s.vertex(j, t + 10 * MS, ctx, "[internal] load build context", started=t + 1 * MS,
             completed=t + 10 * MS)
    t += 12 * MS
    for i, step in enumerate(["COPY . /src", "RUN make -C /src"], start=2):
        d = digest("step", str(i))
        s.quick(j, t, d, "[%d/3] %s" % (i, step), 0, inputs=[prev], cached=True)
        prev = d
        t += 1 * MS
    exp = digest("export")
    s.vertex(j, t, exp, "exporting to image", inputs=[prev], started=t)
    s.status(j, t + 1 * MS, exp, "exporting layers", started=t + 1 * MS,
             completed=t + 1 * MS)
    img = digest("image")
    s.status(j, t + 12 * MS, exp, "writing image " + img, started=t + 2 * MS,
             completed=t + 12 * MS)
    s.vertex(j, t + 13 * MS, exp, "exporting to image", inputs=[prev], started=t,
             completed=t + 13 * MS)
    s.job_finished(j, t + 20 * MS, image=img)
    s.write()


def download():
    """(5) Pulling a base image: layer downloads with byte progress (some
    updates below BuildKit's 5 % / 5 s threshold are not printed), then
    extraction."""
    s = Stream("download")
    j = Job("default", "default", "", "default", 1)
    t = T0
    s.job_started(j, t, steps=2)
    t, _ = load_definition(s, j, t + 1 * MS)
    base = digest("debian")
    name = "[1/2] FROM docker.io/library/debian:12@sha256:" + "c" * 64
    s.vertex(j, t, base, name, started=t)
    s.status(j, t + 1 * MS, base, "resolve docker.io/library/debian:12@sha256:" + "c" * 64,
             started=t + 1 * MS, completed=t + 2 * MS)
    L1, L2 = digest("layer1"), digest("layer2")
    T1, T2 = 49_553_125, 1_048_576
    s1, s2 = t + 10 * MS, t + 11 * MS
    s.status(j, s1, base, L1, 0, T1, started=s1)
    s.status(j, s2, base, L2, 0, T2, started=s2)
    s.status(j, t + 300 * MS, base, L2, T2, T2, started=s2, completed=t + 300 * MS)
    # 1.5 MB (3 %) every 100 ms: BuildKit's throttle prints every other.
    for k in range(1, 33):
        cur = min(T1, k * 1_500_000)
        s.status(j, t + 10 * MS + k * 100 * MS, base, L1, cur, T1, started=s1)
    s.status(j, t + 3300 * MS, base, L1, T1, T1, started=s1, completed=t + 3300 * MS)
    s.status(j, t + 3310 * MS, base, "extracting " + L1, started=t + 3301 * MS)
    s.status(j, t + 4750 * MS, base, "extracting " + L1, started=t + 3301 * MS,
             completed=t + 4750 * MS)
    s.status(j, t + 4800 * MS, base, "extracting " + L2, started=t + 4751 * MS,
             completed=t + 4800 * MS)
    s.vertex(j, t + 4810 * MS, base, name, started=t, completed=t + 4810 * MS)
    t += 4820 * MS
    run = digest("run")
    s.vertex(j, t, run, "[2/2] RUN apt-get update", inputs=[base], started=t)
    s.log(j, t + 310 * MS, run, "Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]\n")
    s.log(j, t + 2900 * MS, run, "Fetched 9095 kB in 3s (3032 kB/s)\nReading package lists...")
    s.log(j, t + 12400 * MS, run, "\n")
    s.vertex(j, t + 12500 * MS, run, "[2/2] RUN apt-get update", inputs=[base],
             started=t, completed=t + 12500 * MS)
    s.job_finished(j, t + 12600 * MS)
    s.write()


def two_jobs():
    """(6) One target for two platforms, run at once: vertex names carry
    the job, logs interleave, each job reports its own end."""
    s = Stream("multijob")
    a = Job("app@linux/amd64", "app", "linux/amd64", "kiln0", 1)
    b = Job("app@linux/arm64", "app", "linux/arm64", "kiln0", 2)
    t = T0
    s.job_started(a, t, steps=2)
    s.job_started(b, t + 1 * MS, steps=2)
    # The two prologues run at the same time: record them apart, then
    # merge their lines by event time.
    n = len(s.lines)
    ta, _ = load_definition(s, a, t + 2 * MS, "amd64")
    la = s.lines[n:]
    del s.lines[n:]
    tb, _ = load_definition(s, b, t + 4 * MS, "arm64")
    lb = s.lines[n:]
    del s.lines[n:]
    s.lines += sorted(la + lb, key=lambda l: json.loads(l)["time"])
    t = max(ta, tb)
    # The same FROM in both jobs: two vertices, #N each.
    base = digest("alpine")
    fa = "[1/2] FROM docker.io/library/alpine:3.20"
    s.quick(a, t, base, fa, 3 * MS)
    s.quick(b, t + 1 * MS, base, fa, 5 * MS)
    t += 10 * MS
    run = digest("run")
    rn = "[2/2] RUN uname -m"
    s.vertex(a, t, run, rn, inputs=[base], started=t)
    s.vertex(b, t + 2 * MS, run, rn, inputs=[base], started=t + 2 * MS)
    s.log(b, t + 150 * MS, run, "aarch64\n")
    s.log(a, t + 160 * MS, run, "x86_64\n")
    s.vertex(a, t + 170 * MS, run, rn, inputs=[base], started=t, completed=t + 170 * MS)
    s.log(b, t + 180 * MS, run, "running under ")
    s.job_finished(a, t + 200 * MS, image=digest("img-amd64"))
    s.log(b, t + 400 * MS, run, "emulation\n")
    s.vertex(b, t + 420 * MS, run, rn, inputs=[base], started=t + 2 * MS,
             completed=t + 420 * MS)
    s.job_finished(b, t + 450 * MS, image=digest("img-arm64"))
    s.write()


def sequential():
    """(8) Two platforms built one after the other (kiln build --platform
    a,b): job.started declares two jobs, so the first job's vertices are
    labelled before the second job is seen."""
    s = Stream("sequential")
    t = T0
    for n, (plat, arch) in enumerate((("linux/amd64", "x86_64"), ("linux/arm64", "aarch64"))):
        j = Job("default@" + plat, "default", plat, "unix:///run/docker.sock", n + 1)
        s.job_started(j, t, steps=2, backend="docker", jobs=2)
        base = digest("busybox", plat)
        s.quick(j, t + 1 * MS, base, "[1/2] FROM busybox", 2 * MS, cached=True)
        run = digest("run", plat)
        rn = "[2/2] RUN uname -m"
        s.vertex(j, t + 5 * MS, run, rn, inputs=[base], started=t + 5 * MS)
        s.log(j, t + 90 * MS, run, arch + "\n")
        s.vertex(j, t + 100 * MS, run, rn, inputs=[base], started=t + 5 * MS,
                 completed=t + 100 * MS)
        s.job_finished(j, t + 110 * MS, config=digest("cfg", plat))
        t += 200 * MS
    s.write()


def warning():
    """(7) Dockerfile lint warnings: one reported on the vertex that parsed
    the Dockerfile, one without a vertex; the build succeeds."""
    s = Stream("warning")
    j = Job("default", "default", "", "default", 1)
    t = T0
    s.job_started(j, t, steps=2)
    t0 = t + 1 * MS
    d1 = digest("dockerfile")
    s.vertex(j, t0, d1, "[internal] load build definition from Dockerfile", started=t0)
    s.status(j, t0 + 20 * MS, d1, "transferring dockerfile:", current=96,
             started=t0 + 5 * MS, completed=t0 + 20 * MS)
    s.warning(j, t0 + 21 * MS,
              "JSONArgsRecommended: JSON arguments recommended for CMD to prevent "
              "unintended behavior related to OS signals",
              vertex=d1,
              detail=["JSON arguments recommended for ENTRYPOINT/CMD to prevent "
                      "unintended behavior related to OS signals"],
              url="https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
              file="Dockerfile", line=3)
    s.vertex(j, t0 + 22 * MS, d1, "[internal] load build definition from Dockerfile",
             started=t0, completed=t0 + 22 * MS)
    s.warning(j, t0 + 23 * MS,
              "FromAsCasing: 'as' and 'FROM' keywords' casing do not match",
              file="Dockerfile", line=1)
    t = t0 + 30 * MS
    base = digest("alpine")
    s.quick(j, t, base, "[1/2] FROM docker.io/library/alpine:3.20", 2 * MS, cached=True)
    t += 5 * MS
    run = digest("run")
    s.vertex(j, t, run, "[2/2] RUN echo hi", inputs=[base], started=t)
    s.log(j, t + 80 * MS, run, "hi\n")
    s.vertex(j, t + 90 * MS, run, "[2/2] RUN echo hi", inputs=[base], started=t,
             completed=t + 90 * MS)
    s.job_finished(j, t + 100 * MS)
    s.write()


def main():
    for f in (simple, parallel, failing, cached, download, two_jobs, warning,
              sequential):
        f()
    return 0


if __name__ == "__main__":
    sys.exit(main())
