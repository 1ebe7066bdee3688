"""The readers' file cache when full: the cost of storing a new answer once the cache holds
its bound of entries, cachelib's FileSystemCache against kb.cache.BoundedFileCache, in the same
run on the same disk.

    .venv/bin/python -m bench.page_cache                 # bound 5,000 (KB_CACHE_THRESHOLD)
    .venv/bin/python -m bench.page_cache --entries 2000 --writes 500

cachelib prunes a full cache by reading every file and removing one entry, on every new entry;
BoundedFileCache prunes to 80 % of the bound, so one scan pays for many entries.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from cachelib import FileSystemCache

from kb.cache import BoundedFileCache

BODY = {"body": b"<html>" + b"x" * 20_000, "status": 200, "headers": [], "etag": "e"}


def per_write_ms(cache_class: type[FileSystemCache], entries: int, writes: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix="kb-page-cache-"))
    try:
        cache = cache_class(str(folder), threshold=entries, default_timeout=300)
        for number in range(entries + 1):  # full: the next entry prunes
            cache.set(f"fill-{number}", BODY)
        started = time.perf_counter()
        for number in range(writes):
            cache.set(f"new-{number}", BODY)
        return (time.perf_counter() - started) / writes * 1000
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=5000, help="the bound (KB_CACHE_THRESHOLD)")
    parser.add_argument("--writes", type=int, default=300, help="new entries timed once full")
    args = parser.parse_args()
    cachelib_ms = per_write_ms(FileSystemCache, args.entries, args.writes)
    bounded_ms = per_write_ms(BoundedFileCache, args.entries, args.writes)
    print(f"full file cache, bound {args.entries}, {args.writes} new entries of 20 kB:")
    print(f"  cachelib FileSystemCache  {cachelib_ms:8.2f} ms per new entry")
    print(f"  kb BoundedFileCache       {bounded_ms:8.2f} ms per new entry")
    print(f"  ratio {bounded_ms / cachelib_ms:.3f} (lower is better)")


if __name__ == "__main__":
    main()
