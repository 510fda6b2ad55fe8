"""What the machine itself costs, measured beside the figures it bounds:

  sha256_floor  CPU seconds one core spends on the SHA-256 of 1 GiB in memory: the least
                `audit.digest: "sha256"` can add.
"""

import hashlib
import os
import time

MIB = 1024 ** 2


def sha256_floor():
    """The best of three 256 MiB runs, scaled to 1 GiB (OpenSSL through hashlib: the CPU's
    SHA instructions where it has them, as ring's in ftpgate)."""
    buf = os.urandom(16 * MIB)
    best = None
    for _ in range(3):
        h = hashlib.sha256()
        t0 = time.process_time()
        for _ in range(16):
            h.update(buf)
        spent = (time.process_time() - t0) * 4
        best = spent if best is None else min(best, spent)
    return best
