"""A small JSON path language for platform specs (docs/specs.md "Paths").

    post._id                      a key, then a key
    urls[*].long                  every element of a list, then a key
    users[0].name                 one element
    $.users[id={creator}].name    from the document root; keep the elements whose ``id`` equals
                                  (one of) the values of ``creator`` in the current object
    urls[_id={links[*]}].long     a filter against several values

Paths without ``$.`` start at the current object (a post, in ``[posts]``); paths with ``$.``
at the whole answer. ``select`` always returns a list (empty when nothing matches): a missing
key is not an error, archives are full of absent fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_STEP = re.compile(rf"(?P<name>{_NAME})?(?P<brackets>(?:\[[^\[\]]*(?:\[[^\[\]]*\])?[^\[\]]*\])*)")
_BRACKET = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]")
_FILTER = re.compile(rf"^(?P<field>{_NAME})=(?P<value>.+)$")


@dataclass(frozen=True)
class _Filter:
    field: str
    ref: JsonPath | None  # {path}: compared with the values of this path (current object)
    literal: str | None


@dataclass(frozen=True)
class _Step:
    name: str | None
    selectors: tuple[str | int | _Filter, ...]  # "*", an index, or a filter


def _split(text: str) -> list[str]:
    """Split on dots outside brackets and braces."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced {ch!r}")
        if ch == "." and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise ValueError("unbalanced brackets")
    parts.append(cur)
    return parts


def _selector(inner: str) -> str | int | _Filter:
    inner = inner.strip()
    if inner == "*":
        return "*"
    if re.fullmatch(r"-?[0-9]+", inner):
        return int(inner)
    m = _FILTER.match(inner)
    if not m:
        raise ValueError(f"bad selector [{inner}] (use [*], [N] or [field=value])")
    value = m.group("value").strip()
    if value.startswith("{") and value.endswith("}"):
        return _Filter(m.group("field"), JsonPath.parse(value[1:-1]), None)
    return _Filter(m.group("field"), None, value.strip("'\""))


@dataclass(frozen=True)
class JsonPath:
    text: str
    absolute: bool
    steps: tuple[_Step, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        """Compile ``text``; ``ValueError`` with the problem when it is not a valid path."""
        body = text.strip()
        absolute = body == "$" or body.startswith("$.")
        if absolute:
            body = body[2:]
        steps: list[_Step] = []
        if body:
            for part in _split(body):
                m = _STEP.fullmatch(part)
                if not part or not m or (not m.group("name") and not m.group("brackets")):
                    raise ValueError(f"bad path step {part!r} in {text!r}")
                sels = tuple(_selector(s) for s in _BRACKET.findall(m.group("brackets") or ""))
                steps.append(_Step(m.group("name"), sels))
        return cls(text, absolute, tuple(steps))

    def select(self, current: Any, root: Any = None) -> list[Any]:
        """Every value this path reaches (``None`` values dropped)."""
        values = [root if self.absolute and root is not None else current]
        for step in self.steps:
            values = [v for value in values for v in _apply(step, value, current)]
        return [v for v in values if v is not None]

    def first(self, current: Any, root: Any = None) -> Any:
        found = self.select(current, root)
        return found[0] if found else None


def _apply(step: _Step, value: Any, current: Any) -> list[Any]:
    if step.name is not None:
        if not isinstance(value, dict) or step.name not in value:
            return []
        value = value[step.name]
    out = [value]
    for sel in step.selectors:
        nxt: list[Any] = []
        for v in out:
            if not isinstance(v, list):
                continue
            if sel == "*":
                nxt.extend(v)
            elif isinstance(sel, int):
                if -len(v) <= sel < len(v):
                    nxt.append(v[sel])
            else:
                assert isinstance(sel, _Filter)
                wanted = ({str(x) for x in sel.ref.select(current)} if sel.ref is not None
                          else {sel.literal})
                nxt.extend(e for e in v if isinstance(e, dict) and sel.field in e
                           and str(e[sel.field]) in wanted)
        out = nxt
    return out


__all__ = ["JsonPath"]
