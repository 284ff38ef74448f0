"""How strong the fast tests are: mutation testing of the rules and the host views.

    python tools/mutation.py                  # a fresh run: every mutant of teardown/verdicts.py and
                                              # teardown/timewait/*, then the score (2-3 h on 2 cores)
    python tools/mutation.py --survivors      # test again the last run's survivors and untested mutants only
                                              # (after adding tests: much quicker than a fresh run)
    python tools/mutation.py --score          # the last run's score, running nothing

mutmut (`pip install -e '.[mutation]'`) copies teardown/, tests/ and captures/ into mutants/,
rewrites each function of the mutated files into many altered copies (a `<` made `<=`, a
constant changed, an argument dropped, ...), and runs the tests that call that function against
each copy: a mutant is killed when a test fails. Which files and tests: [tool.mutmut] in
pyproject.toml (the fast tests that judge verdicts and host views; no browser, live, cluster or
benchmark tests). One worker process (--max-children 1): the machine is shared. A survivor is a
change no test noticed: a missing test, or a change that cannot alter any output (equivalent;
README "How it is tested" lists those).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
LOG = ROOT / "mutants.log"  # mutmut's own output (a spinner); beside mutants/, which a fresh run deletes
# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code): a timeout is a mutant that hangs, caught.
KILLED = {1, 3, 36, 24, -24, 152, 255}
SURVIVED = {0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--survivors", action="store_true",
                     help="test again only the last run's survivors and untested mutants")
    how.add_argument("--score", action="store_true", help="print the last run's score only")
    args = parser.parse_args(argv)

    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if mutmut is None and not args.score:
        print("mutation: mutmut is not installed; install it with: pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    if not list((ROOT / "teardown").glob("_flows*.so")):
        print("mutation: the C extensions are not built; build them with: python setup.py build_ext --inplace",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    if not args.score:
        assert mutmut is not None
        if args.survivors:
            # Untested: never reached, or reset by mutmut because their function changed since.
            names = [name for name, code in results().items() if code in SURVIVED or code is None]
            if not names:
                print("mutation: no survivors in mutants/ (run without --survivors first)", file=sys.stderr)
                return 2
        else:
            shutil.rmtree(MUTANTS, ignore_errors=True)  # a fresh copy of the tree: nothing stale is tested
            names = []
        with LOG.open("w") as log:
            # Mutants named on the command line are tested again even with a result; the others keep theirs.
            done = subprocess.run([mutmut, "run", "--max-children", "1", *names], cwd=ROOT, stdout=log,
                                  stderr=subprocess.STDOUT)
        if done.returncode != 0:
            print(LOG.read_text()[-3000:].replace("\r", "\n"), file=sys.stderr)
            print(f"mutation: mutmut failed (exit {done.returncode}); its output is in {LOG.name}", file=sys.stderr)
            return 1
    print_score(results())
    if not args.score:
        print(f"ran {time.monotonic() - started:,.0f} s")
    return 0


def results() -> dict[str, int | None]:
    """Every mutant's exit code (None: not tested yet), from mutmut's files in mutants/."""
    out: dict[str, int | None] = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def source_of(mutant: str) -> str:
    """teardown.timewait.tables.x__hosts__mutmut_3 -> teardown/timewait/tables.py (the package's
    __init__.py for a mutant of teardown.timewait itself)."""
    module = mutant.rsplit(".", 1)[0]
    path = Path(*module.split("."))
    return str(path.with_suffix(".py")) if (ROOT / path.with_suffix(".py")).exists() else str(path / "__init__.py")


def print_score(codes: dict[str, int | None]) -> None:
    """Killed / total per file and in all, then the survivors' ids (`mutmut show ID` shows one)."""
    if not codes:
        print("mutation: no results in mutants/", file=sys.stderr)
        return
    total, killed, survived = Counter[str](), Counter[str](), Counter[str]()
    for name, code in codes.items():
        f = source_of(name)
        total[f] += 1
        killed[f] += code in KILLED
        survived[f] += code in SURVIVED
    width = max(map(len, total))
    print(f"{'file':<{width}}  killed / mutants   score  survived  other")
    for f in sorted(total):
        other = total[f] - killed[f] - survived[f]
        print(f"{f:<{width}}  {killed[f]:>6,} / {total[f]:<7,} {killed[f] / total[f]:>6.1%}  {survived[f]:>8,}  {other:>5,}")
    k, t = sum(killed.values()), sum(total.values())
    print(f"{'all':<{width}}  {k:>6,} / {t:<7,} {k / t:>6.1%}  {sum(survived.values()):>8,}  "
          f"{t - k - sum(survived.values()):>5,}")
    print("(other: not tested, no test calls the function, or suspicious)")
    left = sorted(name for name, code in codes.items() if code not in KILLED)
    if left:
        print(f"\nnot killed ({len(left):,}; `mutmut show ID` shows one):")
        for name in left:
            print(f"  {name}  {'survived' if codes[name] in SURVIVED else f'exit {codes[name]}'}")


if __name__ == "__main__":
    sys.exit(main())
