"""The C record walker, header decoder and flow table: the compiled steps (see README, "Why a C walker")."""
from setuptools import Extension, setup

setup(ext_modules=[
    Extension("teardown.read._walk", ["teardown/read/_walk.c"], extra_compile_args=["-O2"]),
    Extension("teardown._decode", ["teardown/_decode.c"], extra_compile_args=["-O2"]),
    Extension("teardown._flows", ["teardown/_flows.c"], extra_compile_args=["-O2"]),
])
