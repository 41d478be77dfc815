"""The wheel carries the built-in rule set's compiled artefacts (``secretscan/data/prebuilt``), so a
fresh install's first scan loads them instead of compiling for seconds (issue: cold start).

Everything else about the package is in pyproject.toml. The artefacts are computed by the package
being built, in a child process, with the build requirements (pyproject's ``build-system``); if
that fails (no Hyperscan for this platform), the wheel is built without them and the first scan
compiles, as before.

It also compiles the one C extension, ``secretscan.walk.headers`` (Cython): the tar header reading
that a layer of 70,000 small files spends most of its walk on. It is required, not optional: one
reader, not a compiled one and a Python one kept in step; a platform without a wheel needs a C
compiler to install.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py


class BuildWithArtefacts(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # a checkout: `make install` writes them into the source tree
        build_lib = Path(self.build_lib).resolve()
        target = build_lib / "secretscan" / "data" / "prebuilt"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(build_lib), os.environ.get("PYTHONPATH", "")])}
        result = subprocess.run(
            [sys.executable, "-m", "secretscan.prebuild", str(target)],
            env=env,
            cwd=build_lib,  # `-m` puts the working directory first on sys.path: the built copy, not the source
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"warning: building without the compiled rule database: {last}", file=sys.stderr)


setup(
    cmdclass={"build_py": BuildWithArtefacts},
    ext_modules=cythonize(
        [Extension("secretscan.walk.headers", ["secretscan/walk/headers.pyx"])],
        compiler_directives={"language_level": 3},
    ),
)
