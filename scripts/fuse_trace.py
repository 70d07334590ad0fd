"""Reads `perf script` output of the fuse:fuse_request_send/_end tracepoints on stdin and prints,
per request kind, the count and the time from send to answer (see scripts/fuse-trace)."""
import re
import sys

PATTERN = re.compile(
    r"\s([\d.]+):\s+fuse:fuse_request_(send|end): connection \d+ req (\d+)(?: opcode \d+ \((\w+)\))?")


def main():
    sent, took = {}, {}
    first = last = None
    for line in sys.stdin:
        m = PATTERN.search(line)
        if not m:
            continue
        t, kind, req, op = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        first = t if first is None else first
        last = t
        if kind == "send":
            sent[req] = (t, op)
        elif req in sent:
            start, op = sent.pop(req)
            took.setdefault(op, []).append((t - start) * 1e6)
    if not took:
        sys.exit("no FUSE requests were traced")
    total = sum(sum(v) for v in took.values())
    print(f"traced {(last - first) * 1e3:.0f} ms, {total / 1e3:.0f} ms of it waiting for answers")
    print(f"{'request':20} {'count':>8} {'total ms':>9} {'mean us':>8} {'p50 us':>7} {'p99 us':>7}")
    for op, v in sorted(took.items(), key=lambda kv: -sum(kv[1])):
        v.sort()
        name = op.removeprefix("FUSE_")
        print(f"{name:20} {len(v):8d} {sum(v) / 1e3:9.1f} {sum(v) / len(v):8.1f} "
              f"{v[len(v) // 2]:7.1f} {v[int(len(v) * 0.99)]:7.1f}")


if __name__ == "__main__":
    main()
