"""The README's "Your own objective" walkthrough, run as written: its module and its test file
are written to a folder, the test runs, and the comparison runs through the CLI (with a budget
of a few steps instead of the README's 3,000)."""

import re
import shlex
import sys
from pathlib import Path

from jaxgan import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough() -> dict[str, str]:
    """The README's code blocks marked ``<!-- walkthrough: NAME -->``, by name."""
    blocks = re.findall(r"<!-- walkthrough: (\S+) -->\n```[a-z]*\n(.*?)```", README.read_text(),
                        re.S)
    return dict(blocks)


def test_the_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = walkthrough()
    assert set(blocks) == {"my_losses.py", "test_my_losses.py", "command"}
    for name in ("my_losses.py", "test_my_losses.py"):
        (tmp_path / name).write_text(blocks[name])
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        # The user's pytest: every test function of the file passes.
        namespace: dict = {}
        exec(compile(blocks["test_my_losses.py"], "test_my_losses.py", "exec"), namespace)
        tests = [f for name, f in namespace.items() if name.startswith("test_")]
        assert tests
        for test in tests:
            test()
        pytest_line, compare_line = blocks["command"].strip().splitlines()
        assert pytest_line == "pytest test_my_losses.py"
        argv = shlex.split(compare_line)
        assert argv[:2] == ["jaxgan", "compare"]
        short = {"--seeds": "1", "--steps": "4"}  # the README's budget is minutes of CPU
        argv = [short.get(argv[i - 1], a) for i, a in enumerate(argv)][1:]
        assert cli.main([*argv, "--log-every", "2", "--set", "hidden=16", "--no-progress"]) == 0
        table = (tmp_path / "runs" / "mine" / "table.md").read_text()
        assert all(f"| {entry} |" in table for entry in ("nsgan", "lsgan", "my_losses:hinge2"))
    finally:
        sys.modules.pop("my_losses", None)
