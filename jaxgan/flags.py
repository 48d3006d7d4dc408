"""Command-line flags from frozen config dataclasses, with `tyro`.

Bottom layer: stdlib + tyro only, so any entry point can use it without importing jaxgan.
"""

import dataclasses
import inspect
import re
import typing

import tyro
from tyro.constructors import ConstructorRegistry, StructConstructorSpec

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def field_docs(cls) -> dict[str, str]:
    """``{field: help}`` from the ``Attributes:`` section of the first class in ``cls``'s MRO
    that has one (subclasses only change defaults, so they rarely repeat it)."""
    section_re = re.compile(r"^\s*Attributes:\s*$", re.M)
    has = [c.__doc__ for c in cls.__mro__ if section_re.search(c.__doc__ or "")]
    docs, names, section, entry = {}, [], None, None
    for line in inspect.cleandoc(has[0] if has else "").splitlines():
        text, depth = line.strip(), len(line) - len(line.lstrip())
        if text == "Attributes:":
            section = depth
        elif section is None or not text:
            continue
        elif depth <= section:
            break  # the next section (Returns:, Example:, ...)
        else:
            entry = depth if entry is None else entry
            head, colon, rest = text.partition(":")
            new = [n.strip() for n in head.split(",")]
            # tyro's own parser (docstring_parser) misses "a, b: ..." lines, hence this parser.
            if depth == entry and colon and all(n.isidentifier() for n in new):
                names = new
                docs.update(dict.fromkeys(names, rest.strip()))
            elif names:  # a continuation line, indented deeper
                for n in names:
                    docs[n] += " " + text
    # reST / markdown markup (``x``, `x`, :func:`x`) is noise in a terminal.
    return {n: re.sub(r"(:\w+:)?`+([^`]*)`+", r"\2", t).strip() for n, t in docs.items()}


_registry = ConstructorRegistry()
_delegating = False  # our rule steps aside while it asks tyro's own dataclass rule


@_registry.struct_rule
def _attributes_help(info):
    # Wrap tyro's dataclass rule rather than copy it: defaults, nesting, and the docstring
    # forms tyro reads natively (field string literals, # comments) all stay tyro's; the
    # Attributes section only overrides helptext for the names it documents.
    global _delegating
    if _delegating or not dataclasses.is_dataclass(info.type):
        return None
    _delegating = True
    try:
        spec = ConstructorRegistry.get_struct_spec(info)
    finally:
        _delegating = False
    if not isinstance(spec, StructConstructorSpec):
        return spec
    docs = field_docs(info.type)
    fields = [dataclasses.replace(f, helptext=docs.get(f.name, f.helptext)) for f in spec.fields]
    return dataclasses.replace(spec, fields=tuple(fields))


def _bool_flags(cls) -> set[str]:
    # Field names are unique across the nesting (prefixes are omitted), so one flat set.
    out = set()
    for name, t in typing.get_type_hints(cls).items():
        if t is bool:
            out.add("--" + name.replace("_", "-"))
        elif dataclasses.is_dataclass(t):
            out |= _bool_flags(t)
    return out


def _bool_aliases(argv: list[str], flags: set[str]) -> list[str]:
    """``--flag true|1|yes`` / ``--flag=no`` (the argparse CLI's forms) -> ``--flag`` /
    ``--no-flag``, which is all tyro accepts. Only bool flags are touched, so a string
    option's value ``yes`` stays a value."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        name = name.replace("_", "-") if name.startswith("--") else name
        if name in flags and not eq and i + 1 < len(argv) and argv[i + 1].lower() in _BOOL:
            value, eq, i = argv[i + 1], "=", i + 1
        if name in flags and eq and value.lower() in _BOOL:
            arg = name if _BOOL[value.lower()] else "--no-" + name[2:]
        out.append(arg)
        i += 1
    return out


def parse(defaults, argv: list[str], *, prog: str, description: str | None = None, extra=None):
    """Applies ``argv`` to ``defaults`` (a frozen dataclass instance: one ``--field-name``
    flag per field, nested dataclasses' fields included, defaulting to its values) and to
    ``extra`` (another, for command options that are not config fields).

    Returns ``(config, extra)``: new instances of the same classes (``extra`` None if not
    given). Bad flags exit like argparse (SystemExit 2); ``--help`` lists every flag.
    """
    parts = {"config": defaults} | ({"extra": extra} if extra is not None else {})
    # One struct holding both, so tyro parses them in one pass and --help shows both.
    Args = dataclasses.make_dataclass("Args", [(k, type(v)) for k, v in parts.items()], frozen=True)
    flags = set().union(*(_bool_flags(type(v)) for v in parts.values()))
    args = tyro.cli(
        Args,
        args=_bool_aliases(list(argv), flags),
        default=Args(**parts),
        prog=prog,
        description=description,
        # Flags are --fm-layer, not --config.techniques.fm-layer.
        config=(tyro.conf.OmitArgPrefixes,),
        registry=_registry,
    )
    return args.config, getattr(args, "extra", None)
