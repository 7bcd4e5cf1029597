"""Every header of the libraries compiles on its own, without the
precompiled CAF header the builds reuse (which would hide a missing
include): each is the only include of an empty translation unit, checked
with -fsyntax-only. Public headers see only the public include folders;
private ones also their library's src/.

    headers_alone.py SOURCE_DIR BINARY_DIR [CXX]
"""
import concurrent.futures
import os
import pathlib
import subprocess
import sys

src, binary = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
cxx = sys.argv[3] if len(sys.argv) > 3 else "c++"
libraries = ["messages", "transports", "transports/server", "actors/common", "actors/client", "actors/server",
             "actors/broker", "actors/testing"]
public = [src / lib / "include" for lib in libraries] + [binary / "messages" / "include"]


def check(header, extra):
    flags = ["-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-x", "c++", "-"]
    for d in public + extra:
        flags.insert(0, f"-I{d}")
    r = subprocess.run([cxx, *flags], input=f'#include "{header}"\n', capture_output=True,
                       text=True)
    return header, r.returncode, r.stderr


jobs = []
for lib in libraries:
    for h in sorted((src / lib / "include").rglob("*.hpp")):
        jobs.append((h, []))
    for h in sorted((src / lib / "src").rglob("*.hpp")):
        jobs.append((h, [h.parent, src / lib / "src"]))
failed = 0
with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
    for header, rc, err in pool.map(lambda j: check(*j), jobs):
        if rc != 0:
            failed += 1
            first = [line for line in err.splitlines() if "error" in line][:3]
            print(f"FAIL {header.relative_to(src)}:\n  " + "\n  ".join(l[:300] for l in first))
print(f"{len(jobs) - failed} of {len(jobs)} headers compile on their own")
sys.exit(1 if failed else 0)
