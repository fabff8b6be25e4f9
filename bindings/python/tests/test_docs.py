"""The C program of docs/getting-started.md compiles against the headers and runs."""
import os
import re
import shutil
import subprocess

import pytest

import sae

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))


def c_programs(page):
    with open(os.path.join(ROOT, "docs", page)) as fh:
        text = fh.read()
    return [b for b in re.findall(r"```c\n(.*?)```", text, re.S) if "int main" in b]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_getting_started_program_runs(tmp_path):
    programs = c_programs("getting-started.md")
    assert len(programs) == 1
    src = tmp_path / "first.c"
    src.write_text(programs[0])
    exe = tmp_path / "first"
    lib = sae.library_path()
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror",
                    "-I", os.path.join(ROOT, "include"), str(src), "-o", str(exe), lib,
                    "-Wl,-rpath," + os.path.dirname(lib)], check=True)
    out = subprocess.run([str(exe)], check=True, stdout=subprocess.PIPE,
                         universal_newlines=True, timeout=120).stdout
    mmcs = float(re.search(r"mean max cosine similarity: ([0-9.]+)", out).group(1))
    assert mmcs > 0.9
