"""The generator behind bench/make_image.py: what goes into the synthetic benchmark image.

One module per job, each importing only modules listed before it (no cycles, nothing reaches up):

* params: units, fixed times, the shares of the image by content;
* vocab: words, package names, code templates (pure data);
* values: small seeded values (ids, versions, sizes, keys, digests);
* pools: text and byte pools made once per seed, which every file samples;
* model: file specs, layer plans, planted secrets, the shared build state;
* tarwrite: deterministic tar members, hashing sinks, streaming one gzip layer blob;
* contents: ELF binaries, archives (gz, wheel, jar, tgz), big streamed files with plants;
* secret_values: planted values that need more than tests/secretgen.py;
* layers: one module of planners per part of the image (debian, python, node, app, bigdata).

Image assembly and the command line stay in bench/make_image.py, so `python bench/make_image.py`
and the Makefile targets are unchanged.

The planted secrets come from the test suite's generators (tests/secretgen.py), so tests and
benchmarks share one definition of what each secret looks like; tests/ is put on sys.path here
because bench/ scripts are run as files, not installed.
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[2] / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
