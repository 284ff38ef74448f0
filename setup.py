"""The C record walker: the one compiled step (see README, "Why a C walker")."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("teardown.read._walk", ["teardown/read/_walk.c"], extra_compile_args=["-O2"])])
