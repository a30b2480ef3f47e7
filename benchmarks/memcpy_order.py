"""Does a store into a shared mapping reach memory in order? (docs/DURABILITY.md, finding 9)

A child process copies into a shared mapping over and over, each pass
filling ``size`` bytes (even) with the pass number (16 bits, repeated); the parent
reads the last two bytes and then the first two. Were the copy made front to
back, the first bytes, read later, could never hold an older pass than the
last bytes. Each time they do, the copy stored its end before its start, and a
process killed at that moment would leave the end of a record without its
header. ``python -m benchmarks.memcpy_order [seconds]``.
"""

from __future__ import annotations

import mmap
import os
import sys
import tempfile
import time

SIZES = (32, 64, 128, 256, 288, 320, 512, 1024, 1536, 2048, 3072, 8192)


def count_out_of_order(size: int, seconds: float) -> tuple[int, int]:
    """(reads, reads that saw the copy's end newer than its start) for copies of ``size``."""
    with tempfile.TemporaryFile() as file:
        file.truncate(mmap.PAGESIZE * 4)
        mapping = mmap.mmap(file.fileno(), mmap.PAGESIZE * 4)
        passes = [(n % 65536).to_bytes(2, "little") * (size // 2) for n in range(65536)]
        pid = os.fork()
        if pid == 0:
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline:
                n = (n + 1) % 65536
                mapping[0:size] = passes[n]
            os._exit(0)
        reads = seen = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            last = int.from_bytes(mapping[size - 2 : size], "little")
            first = int.from_bytes(mapping[0:2], "little")
            reads += 1
            seen += (last - first) % 65536 == 1
        os.waitpid(pid, 0)
        mapping.close()
    return reads, seen


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    print(f"{'bytes copied':>12} {'reads':>10} {'end stored before start':>24}")
    for size in SIZES:
        reads, seen = count_out_of_order(size, seconds)
        print(f"{size:>12} {reads:>10,} {seen:>24,}")


if __name__ == "__main__":
    main()
