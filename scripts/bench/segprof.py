#!/usr/bin/env python3
"""Where a daemon's CPU went during one bench-director event, from a guest-wide
perf recording (realtime clock) and, for ipvsdir, the timestamps of its own
log lines, which cut the event into the segments bench-director reports.

usage: segprof.py PERF_SCRIPT_TXT LOG|- COMM load|hup

PERF_SCRIPT_TXT: `perf script -F comm,tid,time,ip,sym,dso` of the recording.
Prints, per segment, its wall time, the samples of COMM (and of the other
processes) and the share of COMM's samples by category of the sampled code.
"""
import collections
import datetime
import re
import sys


def log_time(word):
    return datetime.datetime.strptime(word[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def marks_of(log):
    """The ipvsdir log lines that start and end segments (see director.sh)."""
    marks, reloading = {}, False
    for line in open(log, errors="replace"):
        if not re.match(r"\d{4}-\d\d-\d\dT", line):
            continue
        t = log_time(line.split()[0])
        if "Reloading " in line:
            reloading = True
            marks.setdefault("rl", t)
        elif not reloading:
            if "Starting ipvsdir:" in line:
                marks["parsed"] = t
            elif "Starting healthcheckers" in line:
                marks["hc"] = t
            elif "Gained quorum" in line:
                marks.setdefault("q1", t)
                marks["qn"] = t
            elif "IPVS: ipvsadm" in line:
                marks.setdefault("i1", t)
                marks["iN"] = t
        else:
            if "VRRP: reloaded" in line:
                marks.setdefault("vr", t)
            elif "Reloaded healthcheckers" in line:
                marks["rd"] = t
            elif "IPVS: ipvsadm" in line:
                marks.setdefault("o1", t)
    return marks


KERNEL = [
    ("kernel: netlink/IPVS", r"ip_vs|genl|netlink|nla_|sendmsg|recvmsg|sock_|skb|kmalloc|kfree|slab|kmem"),
    ("kernel: page faults/memory", r"fault|page|folio|mm_|lru|pte|memcg|vma|rmqueue|zap|unmap|tlb|brk|mmap"),
    ("kernel: files/writes", r"write|vfs|shmem|file|iov|copy_user|fsnotify|ext4|dentry"),
]
USER = [
    ("config load", r"ipvsdir::config::|nom::|strsim"),
    ("netlink encode/decode", r"netlink_packet|ipvs_sys|lvs::kernel::|netlink_sys"),
    ("log line formatting", r"tracing|lvs::format|core::fmt|fmt::|Display|pad_integral|write_str|write_char|format_inner|escape|nu_ansi"),
    ("health report (JSON)", r"serde|daemon::status|ryu|itoa"),
    ("desired table/diff", r"lvs::desired|lvs::diff|lvs::table|lvs::reconcil|btree|BTree|lvs::owned"),
    ("probe plan/health", r"check::"),
    ("hashing (SipHash)", r"hash|sip::|Hasher"),
    ("copies/drops", r"clone|Clone|drop_in_place|Drop>::drop"),
    ("allocation glue", r"__rust|__rdl|alloc::|raw_vec|RawVec"),
    ("tokio/std", r"tokio|std::|mio"),
]


def category(sym, dso):
    if dso.startswith("[kernel") or dso.startswith("[ip_vs"):
        for name, rx in KERNEL:
            if re.search(rx, sym):
                return name
        return "kernel: other (incl. irq-enable points)"
    base = dso.rsplit("/", 1)[-1]
    if base.startswith("libc"):
        if re.search(r"malloc|free|realloc|calloc|chunk|consolidate|memalign|tcache", sym):
            return "libc malloc/free"
        if re.search(r"mem(cpy|move|set|cmp)|str", sym):
            return "libc mem*/str*"
        return "libc other"
    if base.startswith("ld-linux"):
        return "dynamic loader"
    if base != "ipvsdir" and not base.startswith("ipvsdir"):
        return base  # keepalived, libnl-3, ...
    for name, rx in USER:
        if re.search(rx, sym):
            return name
    return "other ipvsdir code"


def main():
    script, log, comm, which = sys.argv[1:5]
    samples = []
    for line in open(script, errors="replace"):
        m = re.match(r"\s*(.+?)\s+(\d+)\s+(\d+\.\d+):\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", line)
        if m:
            c, _tid, t, _ip, sym, dso = m.groups()
            samples.append((float(t), c, sym, dso))
    own = [s for s in samples if s[1] == comm]
    if not own:
        print(f"    no samples of {comm}")
        return
    first, last = min(s[0] for s in own), max(s[0] for s in own) + 0.001
    mk = marks_of(log) if log != "-" else {}
    try:
        if not comm.startswith("ipvsdir"):
            raise KeyError
        if which == "load":
            segs = [("start_parse", first, mk["parsed"]), ("setup_plan", mk["parsed"], mk["hc"]),
                    ("desired", mk["hc"], mk["q1"]), ("quorum_log", mk["q1"], mk["qn"]),
                    ("kernel", mk["qn"], mk["i1"]), ("op_log", mk["i1"], mk["iN"]),
                    ("after", mk["iN"], last)]
        else:
            cut = mk.get("vr", mk["rl"])
            segs = [("load_copy", mk["rl"], cut), ("checkers", cut, mk["rd"]),
                    ("apply", mk["rd"], mk["o1"]), ("after", mk["o1"], last)]
    except KeyError:
        segs = [("whole event", first, last)]
    for name, a, b in segs:
        mine = [s for s in own if a <= s[0] < b]
        others = collections.Counter(s[1] for s in samples if a <= s[0] < b and s[1] != comm)
        extra = ", ".join(f"{k} {v}" for k, v in others.most_common(3))
        print(f"    {name}: {b - a:.3f} s, {len(mine)} samples of {comm}" + (f" (others: {extra})" if extra else ""))
        cats = collections.Counter(category(s[2], s[3]) for s in mine)
        for k, v in cats.most_common(7):
            print(f"      {100.0 * v / len(mine):5.1f}%  {k}")
        top = collections.Counter(s[2][:72] for s in mine)
        print("      top: " + "; ".join(f"{k} {v}" for k, v in top.most_common(3)))


if __name__ == "__main__":
    main()
