#!/usr/bin/env python3
"""Groups a `perf script` of the host by what each sample was doing: reads the script on
stdin, walks each sample's stack from the leaf up, and charges it to the first group a frame
names (a malloc inside SQLite is SQLite's, the kernel's futex under the blocking pool is the
hand-off's). Prints the groups' shares, then the top frames of the largest ones."""
import re
import sys
from collections import Counter, defaultdict

# (group, pattern on a frame "symbol (dso)"), tried in order for each frame, leaf first.
GROUPS = [
    ("host call: SQLite", r"sqlite3|rusqlite|inventory_host::sqlite"),
    ("host call: key-value", r"inventory_host::key_value|redis::"),
    ("host call: thread hand-off (blocking pool)", r"tokio::runtime::blocking|spawn_blocking|inventory_host::blocking"),
    ("instantiation", r"instantiate|InstancePre|vm::instance::Instance::new|pooling|OwnedImports|new_store|Store<.*>::new|link::|pagemap_scan|factors::.*instance|StoreLimits|madvise"),
    ("host call: WASI (clocks, random, stdout)", r"wasmtime_wasi::|wasi::p2|inventory_host::wasi|StdoutLock|Stdout as std::io::Write"),
    ("HTTP: wasi-http types and bodies", r"wasmtime_wasi_http"),
    ("HTTP: hyper and the server", r"hyper::|hyper_util|inventory_host::server|inventory_host::connections|writev|tcp_|sock_|inet_|__sys_sendto|__sys_recvfrom|do_epoll"),
    ("component model: lifting and lowering", r"component::func|LowerContext|LiftContext|typed::|canonical|resource_table|ResourceTable"),
    ("wasm code", r"\(/tmp/perf-\d+\.map\)"),
    ("tokio: workers parking and waking", r"tokio::runtime|mio::|epoll_wait|Condvar"),
    ("memory (malloc, memcpy)", r"malloc|free|memmove|memcpy|memset|realloc"),
]

MATCHED = defaultdict(Counter)


def classify(frames):
    # The program's own frames say what it was doing; the kernel's say only how (a futex,
    # a write), so they decide only when no frame of the program does.
    user = [f for f in frames if "[kernel.kallsyms]" not in f]
    for frame in user + frames:
        for group, pattern in GROUPS:
            if re.search(pattern, frame):
                MATCHED[group][frame] += 1
                return group
    return "other"

samples = Counter()
leaves = defaultdict(Counter)
stack = []
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        if stack:
            group = classify(stack)
            samples[group] += 1
            leaves[group][stack[0]] += 1
        stack = []
        continue
    if line.startswith((" ", "\t")):
        parts = line.strip().split(" ", 1)
        if len(parts) == 2:
            stack.append(parts[1])
if stack:
    group = classify(stack)
    samples[group] += 1
    leaves[group][stack[0]] += 1

total = sum(samples.values()) or 1
print(f"{total} samples")
for group, n in samples.most_common():
    print(f"{100 * n / total:5.1f}%  {group}")
print()
for group, n in samples.most_common(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
    print(f"{group}: where, and the frame that put it there")
    for frame, m in leaves[group].most_common(5):
        print(f"   {100 * m / total:5.1f}%  {frame[:110]}")
    for frame, m in MATCHED[group].most_common(5):
        print(f"   {100 * m / total:5.1f}%  <- {frame[:106]}")
