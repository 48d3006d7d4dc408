import dataclasses
import time

import pytest

from jaxgan import flags


@dataclasses.dataclass(frozen=True)
class Tricks:
    """Toy techniques.

    Attributes:
      feature_matching: G matches ``D``'s features
        of real data (Sec. 3.1).
      fm_layer: which `layer` of D.
      vbn, vbn_ref_size: virtual batch norm and its reference batch.
    """

    feature_matching: bool = False
    fm_layer: str = "features"
    vbn: bool = False
    vbn_ref_size: int | None = None


@dataclasses.dataclass(frozen=True)
class Toy:
    """A toy config.

    Attributes:
      objective: registry name.
      hidden, depth: the MLP networks
        of the 2-D toy.
      lr: Adam's step size.
      steps: total train steps.
      data_dir: a folder of IDX files.
      conditional: G(z, y) and D(x, y).

    Example:
      not_a_field: this section is not Attributes.
    """

    objective: str = "nsgan"
    hidden: int = 128
    depth: int = 2
    lr: float = 2e-4
    steps: int | None = None
    data_dir: str | None = None
    conditional: bool = False
    seed: int = 0
    """the one seed of the run."""
    width: int = 64  # DCGAN base channels.
    tricks: Tricks = Tricks()


@dataclasses.dataclass(frozen=True)
class BigToy(Toy):
    """A subclass: other defaults, no Attributes of its own."""

    hidden: int = 512
    conditional: bool = True
    tricks: Tricks = Tricks(vbn=True, vbn_ref_size=32)


@dataclasses.dataclass(frozen=True)
class Command:
    out: str | None = None  # output folder.
    resume: bool = False  # continue the run in --out.
    progress: bool = True


def parse(argv, defaults=Toy(), **kw):
    return flags.parse(defaults, argv, prog="toy", **kw)


def test_no_args_round_trip():
    assert parse([]) == (Toy(), None)
    cfg = Toy(hidden=7, steps=3, tricks=Tricks(fm_layer="hidden/0"))
    assert parse([], cfg) == (cfg, None)


def test_values_parse_to_field_types():
    cfg, _ = parse(["--hidden", "3", "--lr", "1e-3", "--steps", "10", "--objective=lsgan"])
    assert cfg == Toy(hidden=3, lr=1e-3, steps=10, objective="lsgan")
    assert type(cfg.hidden) is int and type(cfg.lr) is float and type(cfg.steps) is int


def test_bool_flags():
    assert parse(["--conditional"])[0].conditional is True
    assert parse(["--no-conditional"], Toy(conditional=True))[0].conditional is False


@pytest.mark.parametrize(
    "argv, value",
    [
        (["--conditional", "true"], True),
        (["--conditional", "True"], True),
        (["--conditional", "1"], True),
        (["--conditional=1"], True),
        (["--conditional", "yes"], True),
        (["--conditional", "false"], False),
        (["--conditional", "0"], False),
        (["--conditional=NO"], False),
        (["--conditional", "no"], False),
    ],
)
def test_bool_aliases(argv, value):
    assert parse(argv, Toy(conditional=not value))[0].conditional is value


def test_bool_alias_leaves_other_values_alone():
    cfg, _ = parse(["--objective", "yes", "--conditional", "--hidden", "1"])
    assert cfg == Toy(objective="yes", conditional=True, hidden=1)


def test_nested_fields_are_unprefixed():
    cfg, _ = parse(["--feature-matching", "--fm-layer", "hidden/0", "--vbn", "yes",
                    "--vbn-ref-size", "16"])
    assert cfg.tricks == Tricks(feature_matching=True, fm_layer="hidden/0", vbn=True,
                                vbn_ref_size=16)
    assert parse(["--feature-matching", "no"], Toy(tricks=Tricks(feature_matching=True)))[0] == Toy()


def test_optional_none():
    cfg, _ = parse(["--steps", "None", "--data-dir", "None"], Toy(steps=5, data_dir="d"))
    assert cfg.steps is None and cfg.data_dir is None
    assert parse(["--data-dir", "mnist"])[0].data_dir == "mnist"


def test_subclass_defaults():
    cfg, _ = parse([], BigToy())
    assert type(cfg) is BigToy and cfg == BigToy()
    assert cfg.hidden == 512 and cfg.conditional and cfg.tricks.vbn_ref_size == 32
    cfg, _ = parse(["--depth", "4", "--no-vbn"], BigToy())
    assert cfg == BigToy(depth=4, tricks=Tricks(vbn=False, vbn_ref_size=32))


def test_extra_beside_config():
    cfg, cmd = parse(["--out", "runs/x", "--resume", "--hidden", "8", "--progress=false"],
                     extra=Command())
    assert cfg == Toy(hidden=8)
    assert cmd == Command(out="runs/x", resume=True, progress=False)
    assert parse([], extra=Command()) == (Toy(), Command())


def test_field_docs():
    docs = flags.field_docs(BigToy)
    assert docs["hidden"] == docs["depth"] == "the MLP networks of the 2-D toy."
    assert docs["objective"] == "registry name."
    assert "not_a_field" not in docs and "seed" not in docs
    assert flags.field_docs(Tricks)["feature_matching"] == (
        "G matches D's features of real data (Sec. 3.1).")
    assert flags.field_docs(Tricks)["fm_layer"] == "which layer of D."
    assert flags.field_docs(Command) == {}


def test_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        parse(["--help"], BigToy(), extra=Command())
    assert e.value.code == 0
    # tyro draws boxes and may wrap: compare whitespace-normalised text.
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "usage: toy" in out
    for flag, default, doc in [
        ("--objective", "nsgan", "registry name."),
        ("--hidden", "512", "the MLP networks of the 2-D toy."),
        ("--depth", "2", "the MLP networks of the 2-D toy."),
        ("--lr", "0.0002", "Adam's step size."),
        ("--steps", "None", "total train steps."),
        ("--data-dir", "None", "a folder of IDX files."),
        ("--conditional, --no-conditional", "True", "G(z, y) and D(x, y)."),
        ("--seed", "0", "the one seed of the run."),  # string literal below the field
        ("--width", "64", "DCGAN base channels."),  # comment after the field
        ("--feature-matching, --no-feature-matching", "False",
         "G matches D's features of real data (Sec. 3.1)."),
        ("--fm-layer", "features", "which layer of D."),
        ("--vbn, --no-vbn", "True", "virtual batch norm and its reference batch."),
        ("--vbn-ref-size", "32", "virtual batch norm and its reference batch."),
        ("--out", "None", "output folder."),
        ("--resume, --no-resume", "False", "continue the run in --out."),
        ("--progress, --no-progress", "True", None),
    ]:
        assert flag in out
        after = out[out.index(flag + " "):]
        entry = after[: after.index("(default: ")]
        assert doc is None or doc in entry, (flag, entry)
        assert after[len(entry):].startswith(f"(default: {default})"), (flag, after[:200])
    assert "--tricks." not in out and "--config." not in out


@pytest.mark.parametrize(
    "argv", [["--hidden", "x"], ["--lr", "fast"], ["--bogus"], ["--conditional", "maybe"]]
)
def test_bad_input_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parse(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err


def test_fast():
    parse([])  # warm-up: tyro's first call pays for imports
    start = time.perf_counter()
    parse(["--hidden", "3", "--vbn", "true"], BigToy(), extra=Command())
    assert time.perf_counter() - start < 0.5
