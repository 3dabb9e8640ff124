"""Optionally compiles the strategy engine's hot modules with mypyc.

`DIALER_MYPYC=1` (the Docker image, `make test-compiled`) compiles them; otherwise, and
whenever compiling fails (no C compiler, mypy missing, a mypyc error), the package stays
pure Python, which is the same source. Editable installs stay pure by default: a compiled
module would shadow later edits of its source until the next build.
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    "strategy/cache.py",
    "strategy/calendar.py",
    "strategy/candidates.py",
    "strategy/caps.py",
    "strategy/compiled.py",
    "strategy/context.py",
    "strategy/engine.py",
    "strategy/history.py",
    "strategy/parties.py",
    "strategy/rules.py",
    "strategy/tasks.py",
    "strategy/tiers.py",
    "strategy/verdicts.py",
    "strategy/windows.py",
]


class OptionalBuildExt(build_ext):
    """Build every mypyc extension or none: a partial build is removed."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # a compiler failure: stay pure Python
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            print(f"warning: strategy stays pure Python ({exc})", file=sys.stderr)


def _extensions() -> list:
    if os.environ.get("DIALER_MYPYC") != "1":
        return []
    try:
        from mypyc.build import mypycify

        return mypycify(COMPILED, opt_level="3")
    except BaseException as exc:  # mypy missing or a type error: stay pure Python
        print(f"warning: strategy stays pure Python ({exc!r})", file=sys.stderr)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
