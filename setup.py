"""Build hooks; all metadata lives in pyproject.toml (setuptools reads it from there).

Also the shim Beam's ``--setup_file ./setup.py`` uses to build and ship acir to remote workers.

Building the package (``pip install .`` builds a wheel first) compiles acir's numba kernels for
this machine into ``acir_core/_jitcache`` inside the build, which the wheel then carries: the first
``acir restore`` after installing compiles nothing (see ``acir_core/jit.py``). This takes a
minute or so. ``ACIR_BUILD_KERNELS=0`` skips it (the kernels then compile on first use,
once); editable installs skip it too (they cache into the source tree's ``acir_core/_jitcache``).
The cache is only valid with the numba version and CPU it was made with: pip builds with the
newest numba the constraints allow, which is what a fresh environment installs alongside.
"""
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

_WARM_UP = "import sys; from acir_core.jit import main; sys.exit(main())"


class BuildWithKernels(build_py):
    """build_py, then acir_core.jit.warm_up over the built package, into its _jitcache."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False) or os.environ.get("ACIR_BUILD_KERNELS", "1") == "0":
            return
        lib = os.path.abspath(self.build_lib)
        cache = os.path.join(lib, "acir_core", "_jitcache")
        shutil.rmtree(cache, ignore_errors=True)  # never ship an older build's or a dev tree's entries
        # keep pip's PYTHONPATH: in an isolated build it is how the build requirements (numba) are found
        path = os.pathsep.join(p for p in (lib, os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, ACIR_JIT_CACHE_DIR=cache, PYTHONPATH=path)
        env.pop("NUMBA_DISABLE_JIT", None)
        self.announce("compiling acir's numba kernels into the package (ACIR_BUILD_KERNELS=0 skips this)", 2)
        done = subprocess.run([sys.executable, "-c", _WARM_UP], env=env, cwd=lib)
        if done.returncode:
            # a package without compiled kernels still works: they compile on first use
            self.warn(f"compiling the kernels ahead failed (exit {done.returncode}); they will compile on first use")


setup(cmdclass={"build_py": BuildWithKernels})
