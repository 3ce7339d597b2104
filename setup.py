"""Build configuration beyond pyproject.toml: the media plane's optional C extension.

`parlour.media._fastpath` (src/parlour/media/_fastpath.c) is the SFU's per-packet
forwarding loop in C. It is built from source by `pip install` (`make setup`) and needs a
C compiler and Python's headers (gcc and python3-dev on Debian, see scripts/install). It is
optional: if it does not build, the install goes on and the media plane runs its pure-Python
path (`parlour.media.fastpath`).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "parlour.media._fastpath",
            sources=["src/parlour/media/_fastpath.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
            optional=True,
        )
    ]
)
