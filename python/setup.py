"""Builds the zllm Python package: the pure-Python modules plus libzllm.so.

The library is the C one the zllm tools are made of (no second implementation
of the archive format in Python).  Where it comes from:
  ZLLM_LIBRARY=/path/to/libzllm.so   a library already built (bootstrap.sh and
                                     the tests pass build/lib/libzllm.so)
  otherwise                          CMake builds the target zllm_shared from the
                                     source tree above this directory, into
                                     build/cmake-libzllm here (needs the Debian
                                     packages ./bootstrap.sh installs)
"""
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


def built_library() -> Path:
    given = os.environ.get("ZLLM_LIBRARY")
    if given:
        lib = Path(given)
        if not lib.is_file():
            raise SystemExit(f"ZLLM_LIBRARY={given}: no such file")
        return lib
    src = HERE.parent
    if not (src / "CMakeLists.txt").is_file():
        raise SystemExit(f"{src}: no zllm source tree to build libzllm.so from; set ZLLM_LIBRARY")
    build = HERE / "build" / "cmake-libzllm"
    jobs = str(os.cpu_count() or 1)
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    "-DBUILD_TESTING=OFF"], check=True)
    subprocess.run(["cmake", "--build", str(build), "--target", "zllm_shared", "-j", jobs], check=True)
    return build / "lib" / "libzllm.so"


class BuildWithLibrary(build_py):
    """Copies libzllm.so (the file its links end at) into the package."""

    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "zllm" / "libzllm.so"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built_library().resolve(), dest)


class BinaryDistribution(Distribution):
    """The wheel holds a shared library: tag it for this platform."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
