"""The README's walkthroughs, run as written: "Your own objective" (its module and its test
file are written to a folder, the test runs, and the comparison runs through the CLI) and
"From Python", each with a budget of a few steps instead of the README's thousands."""

import re
import shlex
import sys
from pathlib import Path

import jaxgan
from jaxgan import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough() -> dict[str, str]:
    """The README's code blocks marked ``<!-- walkthrough: NAME -->``, by name."""
    blocks = re.findall(r"<!-- walkthrough: (\S+) -->\n```[a-z]*\n(.*?)```", README.read_text(),
                        re.S)
    return dict(blocks)


def test_the_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = walkthrough()
    assert {"my_losses.py", "test_my_losses.py", "command"} <= set(blocks)
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


def test_the_python_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's "From Python" block, with a few steps and one seed for its budgets."""
    code = walkthrough()["python"]
    short = {"steps=2000": "steps=4", "steps=3000": "steps=6", "seeds=3": "seeds=1"}
    for long, brief in short.items():
        assert long in code
        code = code.replace(long, brief)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "modes" in printed and "| nsgan |" in printed and "| lsgan |" in printed
    assert (tmp_path / "runs" / "py-ring8" / "points.png").exists()
    assert jaxgan.load_run(tmp_path / "runs" / "py-ring8").state.step == 6
