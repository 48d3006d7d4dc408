"""Progress bars: redraws on a terminal, a plain line now and then in a log file."""

import io

from jaxgan import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_file_gets_plain_lines_not_every_redraw():
    log = io.StringIO()
    with progress.bar(total=1000, desc="train", stream=log) as bar:
        for _ in range(1000):
            bar.update(1)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3 and lines[-1].startswith("train: 100%")  # not 1000 redraws
    assert "1000/1000" in lines[-1]


def test_a_terminal_gets_the_live_bar():
    term = Terminal()
    with progress.bar(total=10, desc="train", stream=term, mininterval=0) as bar:
        for _ in range(10):
            bar.update(1)
    assert term.getvalue().count("\r") >= 10


def test_a_disabled_bar_writes_nothing():
    log = io.StringIO()
    with progress.bar(total=10, stream=log, enabled=False) as bar:
        bar.update(10)
    assert log.getvalue() == ""
