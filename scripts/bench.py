"""The benchmark behind scripts/bench: each phase on a Cairn mount and on a plain directory of the
same disk, caches dropped before each phase, figures and ratios printed."""
import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

MiB = 1 << 20


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def timed(fn):
    drop_caches()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def seq_write(path, size, sync=False):
    block = bytearray(os.urandom(MiB))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for i in range(size // MiB):
        block[:8] = i.to_bytes(8, "little")  # every block distinct: no deduplication
        os.write(fd, block)
    if sync:
        os.fsync(fd)
    os.close(fd)


def seq_read(path):
    fd = os.open(path, os.O_RDONLY)
    while os.read(fd, MiB):
        pass
    os.close(fd)


def random_io(path, size, ops, write):
    rng = random.Random(7)
    block = os.urandom(4096)
    fd = os.open(path, os.O_RDWR)
    for _ in range(ops):
        off = rng.randrange(size // 4096) * 4096
        if write:
            os.pwrite(fd, block, off)
        else:
            os.pread(fd, 4096, off)
    os.close(fd)


def small_files(top, n):
    os.makedirs(top, exist_ok=True)
    # 100 bytes of its own per file: Cairn stores identical content once, a plain directory not.
    tag = os.path.basename(top).encode()
    data = [(tag + b" %09d\n" % i) * (100 // (len(tag) + 11) + 1) for i in range(n)]
    t0 = time.perf_counter()
    for i in range(n):
        fd = os.open(os.path.join(top, f"f{i}"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, data[i][:100])
        os.close(fd)
    t1 = time.perf_counter()
    for i in range(n):
        os.stat(os.path.join(top, f"f{i}"))
    t2 = time.perf_counter()
    for i in range(n):
        os.unlink(os.path.join(top, f"f{i}"))
    t3 = time.perf_counter()
    return n / (t1 - t0), n / (t2 - t1), n / (t3 - t2)


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)


def median_ms(fn, runs=5):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def history_bench(cairn, base, quick):
    """Issue figures for history: snapshot and fork time as the workspace grows, listing a
    directory of the past against the live one, and `cairn log` of a file with many versions."""
    store, mnt = os.path.join(base, "hstore"), os.path.join(base, "hmnt")
    os.makedirs(mnt)
    env = dict(os.environ, CAIRN_STORE=store)
    run([cairn, "init"], env=env)
    run([cairn, "mount", mnt], env=env)
    out = {"sizes": []}
    try:
        files = 0
        for size in ([1000, 10000] if quick else [1000, 10000, 100000]):
            while files < size:
                d = os.path.join(mnt, "tree", str(files // 1000))
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, f"f{files}"), "wb") as f:
                    f.write(b"z" * 64)
                files += 1
            snap = median_ms(lambda: run([cairn, "snapshot", "create", "default", f"s{size}-{time.monotonic_ns()}"], env=env))
            fork = median_ms(lambda: run([cairn, "workspace", "fork", "default", f"f{size}-{time.monotonic_ns()}"], env=env))
            # What any command costs before it does anything: start the process, parse, exit.
            noop = median_ms(lambda: run([cairn, "--help"]))
            out["sizes"].append({"files": size, "snapshot_ms": snap, "fork_ms": fork, "cli_start_ms": noop})
        # One directory of 10k entries, live and as it was at a snapshot (nothing changed since).
        flat = os.path.join(mnt, "flat")
        os.makedirs(flat)
        for i in range(2000 if quick else 10000):
            with open(os.path.join(flat, f"e{i}"), "wb") as f:
                f.write(b"e")
        run([cairn, "snapshot", "create", "default", "flat"], env=env)

        def list_dir(path):
            with os.scandir(path) as it:
                for entry in it:
                    entry.stat(follow_symlinks=False)

        out["list_live_ms"] = timed(lambda: list_dir(flat)) * 1000
        out["list_past_ms"] = timed(lambda: list_dir(os.path.join(mnt, ".cairn", "snapshots", "flat", "flat"))) * 1000
        # A file with 10,000 versions.
        path = os.path.join(mnt, "often.txt")
        n_versions = 1000 if quick else 10000
        for i in range(n_versions):
            with open(path, "w") as f:
                f.write(f"version {i}\n")
        out["versions"] = n_versions
        out["log_default_ms"] = median_ms(lambda: run([cairn, "log", path], env=env))
        out["log_all_json_ms"] = median_ms(lambda: run([cairn, "log", path, "--json", "--limit", str(2 * n_versions)], env=env))
    finally:
        subprocess.run([cairn, "unmount", mnt], env=env, stdout=subprocess.DEVNULL)
    return out


def print_history(h):
    print()
    print(f"{'history':44} {'files':>12} {'snapshot ms':>12} {'fork ms':>12} {'CLI start ms':>12}")
    for row in h["sizes"]:
        print(f"{'snapshot create / workspace fork (CLI)':44} {row['files']:12d} {row['snapshot_ms']:12.1f} {row['fork_ms']:12.1f} {row['cli_start_ms']:12.1f}")
    first, last = h["sizes"][0], h["sizes"][-1]
    print(f"growth from {first['files']} to {last['files']} files: snapshot {last['snapshot_ms'] / first['snapshot_ms']:.2f}x, fork {last['fork_ms'] / first['fork_ms']:.2f}x")
    ratio = h["list_past_ms"] / h["list_live_ms"]
    print(f"list + stat a directory: live {h['list_live_ms']:.1f} ms, .cairn/snapshots view {h['list_past_ms']:.1f} ms ({ratio:.2f}x)")
    print(f"cairn log of a file with {h['versions']} versions: {h['log_default_ms']:.1f} ms (newest 50), {h['log_all_json_ms']:.1f} ms (all, --json)")


def percentiles(values):
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return pick(0.5), pick(0.99)


def coordination_bench(cairn, base, quick):
    """Issue figures for coordination: latency from a close returning to the change showing
    through another mount, in `cairn watch`, in `.cairn/events` of another mount and at a
    webhook receiver; and an uncontended flock lock+unlock round trip."""
    import fcntl
    import http.server
    import threading
    store, a, b = (os.path.join(base, d) for d in ("cstore", "cmnt-a", "cmnt-b"))
    os.makedirs(a)
    os.makedirs(b)
    env = dict(os.environ, CAIRN_STORE=store)
    run([cairn, "init"], env=env)
    run([cairn, "mount", a], env=env)
    run([cairn, "mount", b], env=env)
    n = 200 if quick else 1000
    closed, seen = {}, {"watch": {}, "events": {}, "webhook": {}}
    out = {"events": n}
    try:
        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen["webhook"].setdefault(body["path"], time.perf_counter())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        run([cairn, "webhook", "add", f"http://127.0.0.1:{server.server_address[1]}/", "--kind", "write"], env=env)
        watch = subprocess.Popen([cairn, "watch", "--json", "--kind", "write"], env=env, stdout=subprocess.PIPE,
                                 text=True)
        stop = threading.Event()

        def note(line, into):
            e = json.loads(line)
            if e["kind"] == "write":
                into.setdefault(e["path"], time.perf_counter())

        def follow_watch():
            for line in watch.stdout:
                note(line, seen["watch"])

        def follow_events():
            # Raw reads: each one waits for the next change; the last change wakes it to stop.
            fd = os.open(os.path.join(b, ".cairn", "events"), os.O_RDONLY)
            rest = b""
            while not stop.is_set():
                rest += os.read(fd, 65536)
                *lines, rest = rest.split(b"\n")
                for line in lines:
                    note(line, seen["events"])
            os.close(fd)

        threading.Thread(target=follow_watch, daemon=True).start()
        reader = threading.Thread(target=follow_events, daemon=True)
        reader.start()
        time.sleep(0.5)
        visible = []
        for i in range(n):
            name = f"e{i}"
            with open(os.path.join(a, name), "w") as f:
                f.write(str(i))
            closed[name] = time.perf_counter()
            # Through the other mount: poll until the new content reads back.
            while True:
                try:
                    with open(os.path.join(b, name)) as f:
                        if f.read() == str(i):
                            break
                except FileNotFoundError:
                    pass
            visible.append(time.perf_counter() - closed[name])
            time.sleep(0.005)
        deadline = time.monotonic() + 30
        while any(len(v) < n for v in seen.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        out["other_mount_ms"] = [x * 1000 for x in percentiles(visible)]
        for key, arrivals in seen.items():
            lat = [arrivals[p] - closed[p] for p in closed if p in arrivals]
            out[key + "_ms"] = [x * 1000 for x in percentiles(lat)] if lat else [float("nan")] * 2
            out[key + "_received"] = len(lat)
        watch.kill()
        watch.wait()
        stop.set()
        with open(os.path.join(a, "last"), "w") as f:
            f.write("wake the events reader")
        reader.join(timeout=5)
        server.shutdown()
        # flock lock + unlock, uncontended.
        fd = os.open(os.path.join(a, "lockfile"), os.O_RDWR | os.O_CREAT, 0o644)
        trips = []
        for _ in range(200 if quick else 2000):
            t = time.perf_counter()
            fcntl.flock(fd, fcntl.LOCK_EX)
            fcntl.flock(fd, fcntl.LOCK_UN)
            trips.append(time.perf_counter() - t)
        os.close(fd)
        out["flock_us"] = [x * 1e6 for x in percentiles(trips)]
    finally:
        subprocess.run([cairn, "unmount", b], env=env, stdout=subprocess.DEVNULL)
        subprocess.run([cairn, "unmount", a], env=env, stdout=subprocess.DEVNULL)
    return out


def print_coordination(c):
    print()
    print(f"{'coordination (' + str(c['events']) + ' closes)':44} {'p50':>12} {'p99':>12} {'received':>12}")
    rows = [("readable through another mount (ms)", "other_mount_ms", None),
            ("cairn watch line (ms)", "watch_ms", "watch_received"),
            (".cairn/events line, other mount (ms)", "events_ms", "events_received"),
            ("webhook request (ms)", "webhook_ms", "webhook_received")]
    for label, key, count in rows:
        p50, p99 = c[key]
        print(f"{label:44} {p50:12.2f} {p99:12.2f} {str(c[count]) if count else '':>12}")
    print(f"{'flock lock+unlock, uncontended (us)':44} {c['flock_us'][0]:12.1f} {c['flock_us'][1]:12.1f}")


class Target:
    def __init__(self, name, path):
        self.name, self.path = name, path


PASSTHROUGH_SOURCE = "/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c"
# libfuse's own C passthrough as a reference FUSE filesystem, in two configurations: as the
# example ships (no extended attributes; permissions left to the directory it passes through to),
# and with what Cairn offers and the kernel then asks of it on every file: extended attributes
# (each write(2) first asks for `security.capability`) and permissions checked by the kernel
# (each change to a directory makes the kernel fetch the directory's attributes again).
REFERENCES = [
    ("passthrough", []),
    ("passthrough+x+p", ["-o", "xattr,default_permissions,allow_other"]),
]


def build_passthrough(base):
    """Compiles libfuse's passthrough_ll example; None (and why) when it cannot be had."""
    if not os.path.exists(PASSTHROUGH_SOURCE) or not shutil.which("cc"):
        print(f"reference filesystem skipped: needs {PASSTHROUGH_SOURCE} (libfuse3-dev) and a C compiler")
        return None
    flags = subprocess.run(["pkg-config", "fuse3", "--cflags", "--libs"], capture_output=True, text=True,
                           check=True).stdout.split()
    binary = os.path.join(base, "passthrough_ll")
    run(["cc", "-O2", "-o", binary, PASSTHROUGH_SOURCE] + flags)
    return binary


class Passthrough:
    """A passthrough_ll mount over a directory of the same disk; unmounted on exit."""

    def __init__(self, binary, base, name, options):
        self.source, self.mnt = os.path.join(base, name, "source"), os.path.join(base, name, "mnt")
        os.makedirs(self.source)
        os.makedirs(self.mnt)
        run([binary, "-o", f"source={self.source}"] + options + [self.mnt])

    def __enter__(self):
        return self.mnt

    def __exit__(self, *exc):
        subprocess.run(["fusermount3", "-u", self.mnt])


def tarball_variants(tarball, count):
    """`tarball` and `count - 1` copies of it in which every file ends with a line of its own:
    extracting one after another stores nothing twice on Cairn (which keeps identical content
    once) and as much on each as on a plain directory."""
    out = [tarball]
    for n in range(1, count):
        variant = f"{tarball[:-4]}-{n}.tar"
        with tarfile.open(tarball) as source, tarfile.open(variant, "w") as target:
            for member in source:
                if member.isreg():
                    data = source.extractfile(member).read() + b"\n/* variant %d */\n" % n
                    member.size = len(data)
                    target.addfile(member, io.BytesIO(data))
                else:
                    target.addfile(member)
        out.append(variant)
    return out


def foundation_bench(t, sizes, tarballs, chunk_bytes=None, many_files=True):
    """The foundation's phases on one target; `chunk_bytes` (Cairn only) measures what a 4 KiB
    rewrite stores; `many_files` false leaves out creating many files (libfuse's passthrough
    holds a descriptor per file it has seen, and fails past the process's limit)."""
    seq_size, rand_size, rand_ops, n_small, n_many = sizes
    r = {}
    big = os.path.join(t.path, "big")
    r["seq_write_MBps"] = seq_size / MiB / timed(lambda: seq_write(big, seq_size))
    r["seq_write_fsync_MBps"] = seq_size / MiB / timed(lambda: seq_write(big, seq_size, sync=True))
    r["seq_read_MBps"] = seq_size / MiB / timed(lambda: seq_read(big))
    if chunk_bytes:
        before = chunk_bytes()
        fd = os.open(big, os.O_WRONLY)
        os.pwrite(fd, os.urandom(4096), seq_size // 2 + 12345)
        os.close(fd)
        r["rewrite_4k_new_chunk_bytes"] = chunk_bytes() - before
    os.unlink(big)
    rnd = os.path.join(t.path, "rnd")
    seq_write(rnd, rand_size)
    r["rand_write_4k_iops"] = rand_ops / timed(lambda: random_io(rnd, rand_size, rand_ops, True))
    r["rand_read_4k_iops"] = rand_ops / timed(lambda: random_io(rnd, rand_size, rand_ops, False))
    os.unlink(rnd)
    # As the tarball: the plain directory's rates vary by half from run to run (a tenth of a
    # second of work, in which the journal may or may not commit), so the median of RUNS counts.
    small = []
    for i in range(RUNS):
        drop_caches()
        small.append(small_files(os.path.join(t.path, f"small{i}"), n_small))
    for k, key in enumerate(("create_per_s", "stat_per_s", "unlink_per_s")):
        r[key] = statistics.median(one[k] for one in small)
        r[key.replace("_per_s", "_runs_per_s")] = [one[k] for one in small]
    # A single extraction varies by a tenth or more from run to run (the plain directory's by
    # half): each target extracts RUNS variants of the tarball, into new directories, and the
    # median counts.
    trees = [os.path.join(t.path, f"src{i}") for i in range(RUNS)]
    extractions = []
    for tree, tarball in zip(trees, tarballs):
        os.makedirs(tree)
        extractions.append(timed(lambda: run(["tar", "-xf", tarball, "-C", tree])))
    greps = [timed(lambda: subprocess.run(["grep", "-r", "-c", "swift", trees[0]], stdout=subprocess.DEVNULL))
             for _ in trees]
    r["tar_extract_s"], r["tar_extract_runs_s"] = statistics.median(extractions), extractions
    r["grep_r_s"], r["grep_r_runs_s"] = statistics.median(greps), greps
    many = os.path.join(t.path, "many")
    os.makedirs(many)

    def create_many():
        for i in range(n_many):
            d = os.path.join(many, str(i % 50))
            if i < 50:
                os.makedirs(d)
            with open(os.path.join(d, f"f{i}"), "wb") as f:
                f.write(b"y")

    if many_files:
        r["create_50k_s"] = timed(create_many)
        r["create_50k_ok"] = sum(len(os.listdir(os.path.join(many, d))) for d in os.listdir(many)) == n_many
    else:
        r["create_50k_s"], r["create_50k_ok"] = float("nan"), None
    for tree in trees:
        shutil.rmtree(tree)
    shutil.rmtree(many)
    return r


RUNS = 3

FOUNDATION_ROWS = [
    ("sequential write 1 MiB blocks (MB/s)", "seq_write_MBps", "rate"),
    ("sequential write + fsync (MB/s)", "seq_write_fsync_MBps", "rate"),
    ("sequential read 1 MiB blocks (MB/s)", "seq_read_MBps", "rate"),
    ("random write 4 KiB (IOPS)", "rand_write_4k_iops", "rate"),
    ("random read 4 KiB (IOPS)", "rand_read_4k_iops", "rate"),
    ("create small files (/s)", "create_per_s", "rate"),
    ("stat small files (/s)", "stat_per_s", "rate"),
    ("unlink small files (/s)", "unlink_per_s", "rate"),
    ("extract source tarball (s)", "tar_extract_s", "time"),
    ("grep -r over it (s)", "grep_r_s", "time"),
    ("create many files (s)", "create_50k_s", "time"),
]


def print_foundation(results):
    """The foundation's figures of every target, then Cairn's ratio to the plain directory and to
    each reference filesystem, and each reference's to the plain directory (rates: higher is
    better; `x time`: lower is better)."""
    names = list(results)
    others = [n for n in names if n not in ("plain", "cairn")]
    if others:
        print("references: libfuse's passthrough_ll as shipped (passthrough), and with -o xattr,default_permissions "
              "(passthrough+x+p: the kernel requests Cairn's features cause)")
    print(f"{'phase':40}" + "".join(f"{n[:22]:>23}" for n in names))
    for label, key, kind in FOUNDATION_ROWS:
        digits = 3 if kind == "time" else 1
        print(f"{label[:40]:40}" + "".join(f"{results[n][key]:23.{digits}f}" for n in names))
    pairs = [("cairn", "plain")] + [("cairn", n) for n in others] + [(n, "plain") for n in others]
    print()
    print(f"{'ratio':40}" + "".join(f"{a + ' / ' + b:>27}" for a, b in pairs))
    for label, key, kind in FOUNDATION_ROWS:
        cells = []
        for a, b in pairs:
            ratio = results[a][key] / results[b][key] if results[b][key] else float("nan")
            cells.append(f"{ratio:.2f}{'x time' if kind == 'time' else ''}")
        print(f"{label[:40]:40}" + "".join(f"{c:>27}" for c in cells))


def print_comparison(names, a, b):
    print(f"{'phase':44} {names[0]:>12} {names[1]:>12} {names[1] + '/' + names[0]:>14}")
    for label, key, kind in FOUNDATION_ROWS:
        p, c = a[key], b[key]
        ratio = c / p if p else float("nan")
        suffix = "x time" if kind == "time" else ""
        print(f"{label:44} {p:12.1f} {c:12.1f} {ratio:13.2f}{suffix}")


def mount_stores(cairn, base, names, switch=None):
    """A fresh store per name under `base`, each mounted by its own daemon; the first gets the
    environment `switch` (a feature off). Returns name -> (mountpoint, environment)."""
    mounts = {}
    for name in names:
        store, mnt = os.path.join(base, name, "store"), os.path.join(base, name, "mnt")
        os.makedirs(mnt)
        env = dict(os.environ, CAIRN_STORE=store, CAIRN_AUDIT_HEAD=os.path.join(base, name, "head"))
        if switch and name == names[0]:
            env.update(switch)
        run([cairn, "init"], env=env)
        run([cairn, "mount", mnt], env=env)
        mounts[name] = (mnt, env)
    return mounts


def unmount_stores(cairn, mounts):
    for mnt, env in mounts.values():
        subprocess.run([cairn, "unmount", mnt], env=env, stdout=subprocess.DEVNULL)


def in_turns(cairn, mounts, turns):
    """(turn, name, mountpoint) for `turns` turns over the stores, the order alternating; before
    each, every store's deferred work (its index of what was last written) is done and the disk
    synced, so that no side is measured while the other's, or its own earlier, work goes on."""
    order = list(mounts.items())
    for turn in range(turns):
        for name, (mnt, _) in order if turn % 2 == 0 else reversed(order):
            for _, env in mounts.values():
                deadline = time.monotonic() + 600
                while (env.get("CAIRN_INDEX") != "off" and time.monotonic() < deadline and subprocess.run(
                        [cairn, "index", "status"], env=env, stdout=subprocess.DEVNULL).returncode != 0):
                    time.sleep(0.5)
            os.sync()
            time.sleep(2)
            yield turn, name, mnt


def switched_bench(cairn, base, sizes, tarballs, switch, names, after=None):
    """The foundation's phases on two stores of one daemon build, the first started with the
    environment `switch` (a feature off), the second without, taken in turns (alternating which
    goes first), three times each; each figure is the best of a store's runs, so that one noisy
    run decides nothing. `after(env)` runs on the second store before it is unmounted."""
    mounts = mount_stores(cairn, base, names, switch)
    best = {}
    try:
        for _, name, mnt in in_turns(cairn, mounts, 3):
            r = foundation_bench(Target(name, mnt), sizes, tarballs)
            kept = best.setdefault(name, r)
            for label, key, kind in FOUNDATION_ROWS:
                kept[key] = (min if kind == "time" else max)(kept[key], r[key])
        if after:
            after(best, mounts[names[1]][1])
    finally:
        unmount_stores(cairn, mounts)
    return best


def audit_bench(cairn, base, sizes, tarballs):
    """The foundation with the audit log off (CAIRN_AUDIT=off) and with full audit."""
    def count_rows(best, env):
        rows = json.loads(subprocess.run(
            [cairn, "audit", "show", "--json", "--limit", "1"], env=env,
            capture_output=True, text=True, check=True).stdout)
        best["audit_rows"] = rows[0]["id"] if rows else 0
    return switched_bench(cairn, base, sizes, tarballs, {"CAIRN_AUDIT": "off"}, ("audit-off", "audit-on"), count_rows)


def search_bench(cairn, base, quick):
    """Issue figures for search: a corpus of text files (about 20 KB each, words of a made-up
    vocabulary of Zipf-like frequencies) written through a mount; how fast the index takes it in
    (while it is written, and rebuilt), the lag from a close to the file being found, and query
    latency on that corpus through `.cairn/search` and through the CLI."""
    rng = random.Random(11)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = sorted({"".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(20000)})
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    mounts = mount_stores(cairn, base, ("search",))
    mnt, env = mounts["search"]
    n_files = 1000 if quick else 10000
    words_per_file = 2800  # about 20 KB

    def wait_indexed():
        while subprocess.run([cairn, "index", "status"], env=env, stdout=subprocess.DEVNULL).returncode != 0:
            time.sleep(0.05)

    r = {"files": n_files}
    try:
        total = 0
        start = time.perf_counter()
        for i in range(n_files):
            directory = os.path.join(mnt, "corpus", str(i // 100))
            if i % 100 == 0:
                os.makedirs(directory)
            text = " ".join(rng.choices(vocabulary, weights, k=words_per_file)) + "\n"
            with open(os.path.join(directory, f"doc{i}.txt"), "w") as f:
                f.write(text)
            total += len(text)
        r["write_s"] = time.perf_counter() - start
        wait_indexed()
        r["catch_up_s"] = time.perf_counter() - start
        r["corpus_mb"] = total / 1e6
        r["index_while_writing_MBps"] = total / 1e6 / r["catch_up_s"]
        start = time.perf_counter()
        run([cairn, "index", "rebuild"], env=env)
        r["rebuild_s"] = time.perf_counter() - start
        r["index_rebuild_MBps"] = total / 1e6 / r["rebuild_s"]

        # Lag: from close(2) returning to the file being found through the mount.
        lags = []
        for i in range(50 if quick else 200):
            token = f"lagtoken{i}x"
            with open(os.path.join(mnt, f"lag{i}.txt"), "w") as f:
                f.write(f"{token} " + " ".join(rng.choices(vocabulary, weights, k=200)))
            closed = time.perf_counter()
            while not os.listdir(os.path.join(mnt, ".cairn", "search", token)):
                time.sleep(0.002)
            lags.append((time.perf_counter() - closed) * 1000)
            time.sleep(rng.random() * 0.02)
        r["lag_p50_ms"], r["lag_p99_ms"] = percentiles(lags)

        # Queries: words of every frequency, pairs, phrases and prefixes.
        def query():
            kind = rng.randrange(4)
            word = rng.choice(vocabulary)
            if kind == 0:
                return word
            if kind == 1:
                return f"{word} {rng.choices(vocabulary, weights)[0]}"
            if kind == 2:
                return '"' + " ".join(rng.choices(vocabulary, weights, k=2)) + '"'
            return word[:3] + "*"
        took = []
        for _ in range(100 if quick else 500):
            q = query()
            start = time.perf_counter()
            os.listdir(os.path.join(mnt, ".cairn", "search", q))
            took.append((time.perf_counter() - start) * 1000)
        r["query_p50_ms"], r["query_p99_ms"] = percentiles(took)
        cli = []
        for _ in range(20 if quick else 50):
            start = time.perf_counter()
            subprocess.run([cairn, "search", query()], env=env, stdout=subprocess.DEVNULL)
            cli.append((time.perf_counter() - start) * 1000)
        r["cli_query_p50_ms"], r["cli_query_p99_ms"] = percentiles(cli)
    finally:
        unmount_stores(cairn, mounts)
    return r


def index_seq_write_bench(cairn, base):
    """Sequential write alone, indexing off against on, four alternating turns, with 20,000 small
    text files written (and indexed) between turns: whether indexing slows large writes."""
    mounts = mount_stores(cairn, base, ("index-off", "index-on"), {"CAIRN_INDEX": "off"})
    out = {name: [] for name in mounts}
    try:
        for turn, name, mnt in in_turns(cairn, mounts, 4):
            seconds = timed(lambda: seq_write(os.path.join(mnt, "seq"), 1 << 30))
            out[name].append(1024 / seconds)
            directory = os.path.join(mnt, f"many{turn}")
            os.makedirs(directory)
            for i in range(20000):
                with open(os.path.join(directory, f"f{i}"), "w") as f:
                    f.write(f"some text here {i}\n")
    finally:
        unmount_stores(cairn, mounts)
    for name, rates in out.items():
        print(f"sequential write, {name}: " + ", ".join(f"{r:.0f}" for r in rates) + " MB/s")
    return out


def print_search(r):
    print(f"corpus: {r['files']} files, {r['corpus_mb']:.0f} MB of text, written in {r['write_s']:.1f} s")
    print(f"indexing: {r['index_while_writing_MBps']:.1f} MB/s while written (caught up {r['catch_up_s']:.1f} s after the first write), "
          f"{r['index_rebuild_MBps']:.1f} MB/s rebuilding ({r['rebuild_s']:.1f} s)")
    print(f"lag from close to found: p50 {r['lag_p50_ms']:.0f} ms, p99 {r['lag_p99_ms']:.0f} ms")
    print(f"query through .cairn/search: p50 {r['query_p50_ms']:.1f} ms, p99 {r['query_p99_ms']:.1f} ms; "
          f"through the CLI: p50 {r['cli_query_p50_ms']:.1f} ms, p99 {r['cli_query_p99_ms']:.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--dir", default=os.environ.get("BENCH_DIR", "/var/tmp"))
    ap.add_argument("--history-only", action="store_true", help="only the history figures")
    ap.add_argument("--coordination-only", action="store_true", help="only the coordination figures")
    ap.add_argument("--audit-only", action="store_true", help="only the foundation figures, audit off against on")
    ap.add_argument("--foundation-only", action="store_true", help="only the foundation figures against a plain directory")
    ap.add_argument("--no-reference", action="store_true",
                    help="without libfuse's passthrough_ll as a reference filesystem in the foundation figures")
    ap.add_argument("--index-seq-write", action="store_true",
                    help="only sequential writes, indexing off against on, with indexing work between them")
    ap.add_argument("--search-only", action="store_true",
                    help="only the search figures, and the foundation's with indexing off against on")
    args = ap.parse_args()
    if args.coordination_only:
        base = tempfile.mkdtemp(prefix="cairn-bench-", dir=args.dir)
        try:
            c = coordination_bench(args.cairn, base, args.quick)
            print_coordination(c)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"coordination": c}, f, indent=2)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    if args.history_only:
        base = tempfile.mkdtemp(prefix="cairn-bench-", dir=args.dir)
        try:
            h = history_bench(args.cairn, base, args.quick)
            print_history(h)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"history": h}, f, indent=2)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return

    seq_size = (128 if args.quick else 1024) * MiB
    rand_size = (64 if args.quick else 256) * MiB
    rand_ops = 2000 if args.quick else 20000
    n_small = 2000 if args.quick else 10000
    n_many = 5000 if args.quick else 50000
    sizes = (seq_size, rand_size, rand_ops, n_small, n_many)

    base = tempfile.mkdtemp(prefix="cairn-bench-", dir=args.dir)
    store, mnt, plain = (os.path.join(base, d) for d in ("store", "mnt", "plain"))
    for d in (mnt, plain):
        os.makedirs(d)
    env = dict(os.environ, CAIRN_STORE=store)
    # A real source tree as the tarball: the package checkouts the build fetched.
    tarball = os.path.join(base, "src.tar")
    checkouts = os.path.join(os.path.dirname(os.path.dirname(args.cairn)), "checkouts")
    run(["tar", "-cf", tarball, "-C", checkouts, "."])
    tar_mb = os.path.getsize(tarball) / MiB
    tarballs = tarball_variants(tarball, RUNS)
    if args.index_seq_write:
        base = tempfile.mkdtemp(prefix="cairn-bench-", dir=args.dir)
        try:
            found = index_seq_write_bench(args.cairn, base)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(found, f, indent=2)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    if args.search_only:
        try:
            found = search_bench(args.cairn, base, args.quick)
            print_search(found)
            both = switched_bench(args.cairn, base, sizes, tarballs, {"CAIRN_INDEX": "off"}, ("index-off", "index-on"))
            print(f"source tarball: {tar_mb:.0f} MiB; many files: {n_many}; best of three runs each")
            print_comparison(("index-off", "index-on"), both["index-off"], both["index-on"])
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"search": found, "foundation": both}, f, indent=2)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    if args.audit_only:
        try:
            a = audit_bench(args.cairn, base, sizes, tarballs)
            print(f"source tarball: {tar_mb:.0f} MiB; many files: {n_many}; best of three runs each")
            print_comparison(("audit-off", "audit-on"), a["audit-off"], a["audit-on"])
            print(f"audit rows written by the audited store: {a['audit_rows']}")
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"audit": a}, f, indent=2)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    run([args.cairn, "init"], env=env)
    run([args.cairn, "mount", mnt], env=env)

    def chunk_bytes():
        out = subprocess.run([args.cairn, "status", "--json"], env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)["statistics"]["chunkBytes"]

    results = {}
    try:
        results["plain"] = foundation_bench(Target("plain", plain), sizes, tarballs)
        binary = None if args.no_reference else build_passthrough(base)
        for name, options in REFERENCES if binary else []:
            with Passthrough(binary, base, name, options) as reference:
                results[name] = foundation_bench(Target(name, reference), sizes, tarballs, many_files=False)
        results["cairn"] = foundation_bench(Target("cairn", mnt), sizes, tarballs, chunk_bytes)
    finally:
        subprocess.run([args.cairn, "unmount", mnt], env=env, stdout=subprocess.DEVNULL)

    cairn_r = results["cairn"]
    print(f"source tarball: {tar_mb:.0f} MiB; many files: {n_many}")
    print_foundation(results)
    print(f"4 KiB rewrite in the middle of a {seq_size // MiB} MiB file stored {cairn_r['rewrite_4k_new_chunk_bytes']} new chunk bytes")
    print(f"creating {n_many} files worked: {cairn_r['create_50k_ok']}")
    for label, key in (("create small files", "create_runs_per_s"), ("unlink them", "unlink_runs_per_s"),
                       ("tarball extractions", "tar_extract_runs_s"), ("grep -r", "grep_r_runs_s")):
        print(f"{label} (the median counts): "
              + "; ".join(f"{n} " + ", ".join(f"{x:.3f}" if x < 100 else f"{x:.0f}" for x in r[key])
                           for n, r in results.items()))
    if args.foundation_only:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
        shutil.rmtree(base, ignore_errors=True)
        return
    results["history"] = history_bench(args.cairn, base, args.quick)
    print_history(results["history"])
    results["coordination"] = coordination_bench(args.cairn, base, args.quick)
    print_coordination(results["coordination"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
