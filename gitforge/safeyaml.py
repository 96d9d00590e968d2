"""YAML from people and environments, read within bounds: a configuration file may be wrong, but
reading it never hangs, never recurses without end, and every refusal says where.

PyYAML's SafeLoader builds nothing dangerous, but it has no limits: an alias bomb ("billion
laughs") expands into millions of values for whoever walks the result, a recursive alias or
a few thousand nested brackets overflow the stack, and a control character or an over-long
integer escapes as an exception that is not a YAML error. `load` bounds the size of the text,
the nesting depth and the number of values after alias expansion; anchors and aliases used
as intended (`<<: *defaults`, a gate reused in `pre_push`) stay well within them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

MAX_BYTES = 128 * 1024     # a generous otto.yaml is a few kilobytes
MAX_DEPTH = 20             # the schema is 3 levels deep (prices.<model>.input, verify[0].run)
MAX_VALUES = 5_000         # scalars, lists and mappings, with every alias expanded
MAX_DIGITS = 30            # an integer longer than this is a typo or an attack, never a setting

# What YAML 1.1 forbids in a stream (PyYAML's Reader.NON_PRINTABLE), lone surrogates included.
_NOT_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
_INT_TAG = "tag:yaml.org,2002:int"


class YAMLProblem(Exception):
    """Why a text was refused, and where (1-based line and column) when that is known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column

    def at(self, name: str) -> str:
        """'otto.yaml:3:7: <message>' (as much of the place as is known)."""
        where = "".join(f":{n}" for n in (self.line, self.column) if n is not None)
        return f"{name}{where}: {self.message}"


@dataclass(frozen=True)
class Loaded:
    """A parsed document: the data, and its node graph (marks give lines); None when empty."""
    data: Any
    node: yaml.Node | None


class _Refused(yaml.MarkedYAMLError):
    """A limit reached while composing, at a place in the text."""


def decode(raw: bytes) -> str:
    """The text of a file that must be UTF-8; a bad byte is named with its line and offset."""
    if len(raw) > MAX_BYTES:
        raise YAMLProblem(f"{len(raw):,} bytes is too large for a configuration file (at most {MAX_BYTES:,})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YAMLProblem(f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8 ({exc.reason}); "
                          "the file must be UTF-8 text", line, column) from None


def load(text: str, inspect: Callable[[yaml.Node], None] | None = None) -> Loaded:
    """Parse one YAML document within the bounds above; every failure is a YAMLProblem that
    says, where known, the line and column. `inspect` sees the node graph before anything is
    built from it (building resolves `<<` merge keys in place)."""
    if len(text) > MAX_BYTES:
        raise YAMLProblem(f"{len(text):,} characters is too large for a configuration (at most {MAX_BYTES:,})")
    if bad := _NOT_PRINTABLE.search(text):
        line, column = _position(text, bad.start())
        char = bad.group()
        if "\udc80" <= char <= "\udcff":  # a byte os.environ could not decode (surrogateescape)
            raise YAMLProblem(f"byte 0x{ord(char) - 0xDC00:02x} at offset {bad.start()} is not UTF-8; "
                              "the text must be UTF-8", line, column)
        raise YAMLProblem(f"the control character U+{ord(char):04X} at offset {bad.start()}; YAML allows only "
                          "printable characters, tabs and newlines (write it as an escape inside double "
                          "quotes, e.g. \"\\x01\")", line, column)
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Loaded(None, None)
        _check_graph(node)
        if inspect is not None:
            inspect(node)
        return Loaded(loader.construct_document(node), node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YAMLProblem(_detail(exc), *((mark.line + 1, mark.column + 1) if mark else ())) from None
    except yaml.YAMLError as exc:
        raise YAMLProblem(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _detail(exc: yaml.MarkedYAMLError) -> str:
    if isinstance(exc, _Refused):
        return exc.problem
    detail, opened = exc.problem or exc.context, exc.context_mark
    if exc.problem and exc.context and opened:  # e.g. an unclosed quote or bracket
        detail += f" ({exc.context} at line {opened.line + 1}, column {opened.column + 1})"
    return f"invalid YAML: {detail}"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_DEPTH levels or MAX_VALUES nodes, and whose
    constructors' own failures (a date like 2024-13-45, `!!float x`) carry the value's place."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._composed = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        mark = self.peek_event().start_mark
        self._depth += 1
        self._composed += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(problem=f"nested more than {MAX_DEPTH} levels deep; no gitforge "
                                       "setting is nested that deep", problem_mark=mark)
            if self._composed > MAX_VALUES:
                raise _Refused(problem=f"more than {MAX_VALUES:,} values; far more than any configuration "
                                       "needs", problem_mark=mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def fetch_flow_collection_start(self, TokenClass):  # noqa: N803 - PyYAML's signature
        """The scanner looks ahead across every open bracket before the composer sees one (a
        cost that grows with the square of the depth): stop it at the same depth."""
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(problem=f"nested more than {MAX_DEPTH} levels deep; no gitforge setting is "
                                   "nested that deep", problem_mark=self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def construct_object(self, node, deep=False):  # noqa: ANN001 - PyYAML's signature
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError) as exc:  # not YAML errors, so they carry no place
            shown = repr(node.value) if len(str(node.value)) <= 60 else repr(str(node.value)[:60]) + "…"
            raise _Refused(problem=f"cannot read {shown} as {node.tag.rsplit(':', 1)[-1]}: {exc}",
                           problem_mark=node.start_mark) from None


def _check_graph(root: yaml.Node) -> None:
    """Refuse a node graph that refers to itself, or that aliases expand past the bounds.
    Each node is sized once (aliases share nodes), so a bomb is measured, not expanded."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded
    open_: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in open_:
            raise _Refused(problem="an alias refers to a value that contains it (a recursive alias)",
                           problem_mark=node.start_mark)
        if key not in sizes:
            if isinstance(node, yaml.ScalarNode):
                if node.tag == _INT_TAG and len(node.value.replace("_", "")) > MAX_DIGITS:
                    raise _Refused(problem=f"the number {node.value[:20]}… has more than {MAX_DIGITS} "
                                           "digits", problem_mark=node.start_mark)
                sizes[key] = (1, 1)
            else:
                children = (node.value if isinstance(node, yaml.SequenceNode)
                            else [n for pair in node.value for n in pair])
                open_.add(key)
                values, deepest = 1, 0
                for child in children:
                    count, height = measure(child, depth + 1)
                    values, deepest = values + count, max(deepest, height)
                    if values > MAX_VALUES:
                        raise _Refused(problem=f"aliases here expand to more than {MAX_VALUES:,} values "
                                               "(an alias bomb?)", problem_mark=node.start_mark)
                open_.discard(key)
                sizes[key] = (values, deepest + 1)
        values, height = sizes[key]
        if depth + height - 1 > MAX_DEPTH:
            raise _Refused(problem=f"aliases here nest values more than {MAX_DEPTH} levels deep",
                           problem_mark=node.start_mark)
        return values, height

    measure(root, 1)
