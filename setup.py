"""Build the Cython core.  Metadata lives in pyproject.toml.

Set CASCADE_DEBUG=1 to turn bounds and wraparound checks back on (docs/development.md, rule 4).
"""
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CASCADE_DEBUG", "") not in ("", "0")

extensions = [
    Extension(
        name,
        [f"cascade/{name.split('.')[-1]}.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )
    for name in ("cascade._core", "cascade._flow", "cascade._ensemble", "cascade._btw")
] + [
    # Per-sample seeds and normals in C (_draws), the correlated grid field's Philox normals
    # and interpolation (_field), on numpy's own normal sampler (libnpyrandom).
    Extension(
        name,
        [f"cascade/{name.split('.')[-1]}.pyx"],
        include_dirs=[numpy.get_include()],
        library_dirs=[os.path.join(os.path.dirname(numpy.__file__), "random", "lib")],
        libraries=["npyrandom", "m"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )
    for name in ("cascade._draws", "cascade._field")
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "cdivision": True,
            "initializedcheck": DEBUG,
        },
    )
)
