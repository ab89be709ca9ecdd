"""
The two commands a fresh clone needs.

    python3 dev.py demo    # an issuer, an API behind the guard, a day of traffic
    python3 dev.py test    # ruff, mypy --strict and the whole pytest suite

Each creates `.venv/` beside this file on first use and installs the pinned
requirements into it, so a machine with only Python 3 and pip is enough.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def _ensure_env() -> None:
    """Create the virtualenv and install what the project pins, once per change."""
    wanted = hashlib.sha256(
        (ROOT / "requirements-dev.txt").read_bytes()
        + (ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return

    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    _run(PYTHON, "-m", "pip", "install", "-q", "--upgrade", "pip")
    _run(PYTHON, "-m", "pip", "install", "-q", "-r", "requirements-dev.txt")
    _run(PYTHON, "-m", "pip", "install", "-q", "--no-deps", "-e", ".")
    STAMP.write_text(wanted)


def test(extra: list[str]) -> int:
    """Run the linters, the type checker and the whole test suite."""
    _ensure_env()
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "mypy")
    result = subprocess.run([str(PYTHON), "-m", "pytest", *extra], cwd=ROOT)

    return result.returncode


def demo(extra: list[str]) -> int:
    """Run the scripted demo: an issuer, an API behind the guard, a day of traffic."""
    _ensure_env()
    result = subprocess.run([str(BIN / "maskinporten-guard"), "demo", *extra], cwd=ROOT)

    return result.returncode


def main() -> int:
    commands = {"test": test, "demo": demo}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    try:
        return commands[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
