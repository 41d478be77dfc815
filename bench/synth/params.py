"""The numbers that shape the synthetic image: units, fixed times, and how its bytes are shared.

Kept apart so that every module can read them without importing code that does work. Changing
any of them changes every generated image, and so every benchmark figure: do it on purpose.
"""

from __future__ import annotations

KiB, MiB = 1 << 10, 1 << 20
MTIME = 1_700_000_000  # fixed member mtime (2023-11-14), so the same seed and size give the same bytes
ZIP_TIME = (2023, 11, 14, 22, 13, 20)
CHUNK_BOUNDARY = 8 * MiB  # secretscan's default chunk size (Config.chunk_bytes): one secret straddles it
BIG_FILE_MAX = 200 * MiB
BIG_FILE_MIN = 10 * MiB  # room for the plant across the 8 MiB boundary even in small test images
SHARES = {"binaries": 0.25, "python": 0.15, "node": 0.15, "compressed": 0.10, "bigdata": 0.35}
COMPRESSED_SPLIT = {"changelog": 0.15, "wheels": 0.30, "tgz": 0.25, "jars": 0.30}  # of the compressed share
SITE = "usr/local/lib/python3.11/site-packages"
