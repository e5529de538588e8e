"""The forked ``pipnb`` of ``tests/cliproc.py`` answers as ``python -m pipnb`` does: same exit codes, same
stdout and stderr, its own folder and environment, none of the test process's state."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
from cliproc import PROGRAM, pipnb


def real(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The installed ``pipnb`` command."""
    return subprocess.run([PROGRAM, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("args", [
    ("--help",),
    ("scan", "--data", "{demo}", "--format", "csv"),
    ("scan", "--data", "{demo}", "--as-of", "06/01/2026"),           # a refused date: one line, exit 2
    ("scan", "--data", "{missing}"),
    ("scan", "--bogus"),
    ("diagnose", "--data", "{demo}", "--rep", "R99"),               # did-you-mean
], ids=["help", "scan-csv", "ambiguous-date", "missing-folder", "unknown-option", "unknown-rep"])
def test_a_forked_command_answers_as_a_fresh_interpreter_does(args, demo_folder, tmp_path):
    args = [a.format(demo=demo_folder, missing=tmp_path / "nowhere") for a in args]
    forked, fresh = pipnb(*args, cwd=tmp_path), real(*args, cwd=tmp_path)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


STATE = ("import json, logging, signal, warnings\n"
         "print(json.dumps([[a, c.__name__, getattr(m, 'pattern', m)] for a, _, c, m, _ in warnings.filters]\n"
         "                 + [len(logging.getLogger().handlers), logging.getLogger().level,\n"
         "                    signal.getsignal(signal.SIGINT) is signal.default_int_handler]))")


def test_the_child_has_its_own_folder_environment_and_a_fresh_interpreters_state(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPNB_TEST_PARENT_ONLY", "1")
    warnings.simplefilter("error")                    # pytest restores the filters after the test
    env = {k: v for k, v in os.environ.items() if k not in ("PIPNB_TEST_PARENT_ONLY", "PYTHONWARNINGS")}
    done = pipnb("demo-data", "--out", "team", "--weeks", "52", cwd=tmp_path, env=env,
                 preexec=lambda: exec(STATE))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "team" / "reps.csv").is_file() and not (tmp_path.parent / "team").exists()
    assert "PIPNB_TEST_PARENT_ONLY" in os.environ    # the parent's environment is untouched
    fresh = subprocess.run([sys.executable, "-c", STATE], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[0] == fresh.stdout.strip()


def test_a_timeout_kills_the_child():
    with pytest.raises(subprocess.TimeoutExpired):
        pipnb("--help", timeout=0, preexec=lambda: __import__("time").sleep(30))


def test_python_dash_m_pipnb_names_the_command_in_its_hint():
    done = subprocess.run([sys.executable, "-m", "pipnb", "plan", "activate", "--bogus"], capture_output=True,
                          text=True)
    assert done.stderr == "pipnb: error: No such option '--bogus'. (see pipnb plan activate --help)\n"
