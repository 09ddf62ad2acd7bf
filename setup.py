import os

from setuptools import setup

# Making the sdist (./dev.sh wheel sets PYLIBBPF_SDIST=1) needs no compiler: the
# extension is declared only when something will build it.
if os.environ.get("PYLIBBPF_SDIST") == "1":
    setup()
else:
    setup(cffi_modules=["build_ffi.py:ffibuilder"])
