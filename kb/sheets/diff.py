"""Per-field, word-level differences between two revisions' data.

The word diff must stay cheap whatever the texts: `difflib.SequenceMatcher(autojunk=False)`
over the whole token lists is cubic on repetitive input (two 1,000-character fields took 2 s,
10,000 characters minutes), and the diff page is open to any contributor. So the alignment is
a patience diff with a work budget:

1. the common prefix and suffix are trimmed (a typical edit is then a few tokens);
2. the remaining range is cut at the tokens that occur exactly once on each side, in order
   (longest increasing subsequence), and each gap between two such anchors is aligned the same
   way, recursively;
3. a gap without such anchors is aligned by SequenceMatcher only while it is small, within a
   global budget; beyond that, and once the total work budget is spent, the rest of a gap is
   shown as one deleted block followed by one inserted block.

Every step is linear or bounded by a constant, so any pair of 20,000-character fields takes a
few milliseconds (`bench/diff.py`); ordinary edits keep word-level <del>/<ins> marks.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from kb.sheets.fields import FIELDS, Field, Kind

_TOKENS = re.compile(r"\s+|[^\s\w]|\w+")

# A gap this small (tokens on both sides) is shown as a plain replacement.
_TINY = 6
# SequenceMatcher only on anchor-less gaps with at most this many token pairs (its worst case
# grows with the cube of the size; about 1 µs per pair on prose) …
_MATCHER_MAX_PAIRS = 2_500
# … and on at most this many pairs in total for one diff.
_MATCHER_BUDGET = 20_000
# Tokens examined by the anchor search in total for one diff (twice the tokens of two
# 20,000-character fields of prose), after which the remaining gaps are shown as replacements.
_WORK_BUDGET = 50_000

Opcode = tuple[str, int, int, int, int]  # as difflib: tag, a[i1:i2], b[j1:j2]


@dataclass
class FieldDiff:
    field: Field
    old: str
    new: str
    html: Markup  # the new text with <del>/<ins> word highlights


def as_text(field: Field, value: Any) -> str:
    if field.kind is Kind.RECORDS:  # one line per indicator: a change shows on its line
        from kb.sheets.indicators import as_text as records_text  # it reads the declaration

        return records_text(value)
    if field.kind is Kind.MULTI:
        return "\n".join(field.labels(value))
    if field.kind is Kind.LIST:
        return "\n".join(value or [])
    if field.kind is Kind.CHOICE:
        return field.choice_label(value) if value else ""
    if field.facet is not None and field.facet.label_of is not None and value:
        # Official codes read as names: "Pyrénées-Orientales (66)", not "66".
        return field.facet.label_of(str(value))
    return str(value or "")


class _Aligner:
    """Opcodes turning `a` into `b`, in order, within bounded work."""

    def __init__(self, a: list[str], b: list[str]):
        self.a, self.b = a, b
        self.ops: list[Opcode] = []
        self.work = 0
        self.matcher_budget = _MATCHER_BUDGET

    def run(self) -> list[Opcode]:
        # An explicit stack (not recursion): adversarial input could nest deeply. Tasks are
        # popped in text order, so opcodes are appended in order.
        stack: list[Opcode] = [("range", 0, len(self.a), 0, len(self.b))]
        while stack:
            task = stack.pop()
            if task[0] == "range":
                stack.extend(reversed(self._range(*task[1:])))
            else:
                self._emit(*task)
        return self.ops

    def _emit(self, tag: str, i1: int, i2: int, j1: int, j2: int) -> None:
        if i1 == i2 and j1 == j2:
            return
        # Consecutive changes become one change, consecutive equal runs one run; the final
        # tags (replace, delete, insert) are read from the ranges at the end.
        kind = "equal" if tag == "equal" else "change"
        if self.ops and self.ops[-1][0] == kind:
            last = self.ops[-1]
            self.ops[-1] = (kind, last[1], i2, last[3], j2)
        else:
            self.ops.append((kind, i1, i2, j1, j2))

    def _range(self, a1: int, a2: int, b1: int, b2: int) -> list[Opcode]:
        """Emit what can be decided now; return the sub-tasks, in text order."""
        a, b = self.a, self.b
        start_a = a1
        while a1 < a2 and b1 < b2 and a[a1] == b[b1]:
            a1 += 1
            b1 += 1
        self._emit("equal", start_a, a1, b1 - (a1 - start_a), b1)
        end_a, end_b = a2, b2
        while a1 < a2 and b1 < b2 and a[a2 - 1] == b[b2 - 1]:
            a2 -= 1
            b2 -= 1
        tail: list[Opcode] = [("equal", a2, end_a, b2, end_b)]
        n, m = a2 - a1, b2 - b1
        if n == 0 or m == 0 or n + m <= _TINY:
            return [("replace", a1, a2, b1, b2), *tail]
        self.work += n + m
        if self.work > _WORK_BUDGET:
            return [("replace", a1, a2, b1, b2), *tail]
        anchors = _unique_anchors(a, b, a1, a2, b1, b2)
        if not anchors:
            return [*self._small(a1, a2, b1, b2), *tail]
        tasks: list[Opcode] = []
        i, j = a1, b1
        for ai, bj in anchors:
            if i < ai or j < bj:
                tasks.append(("range", i, ai, j, bj))
            tasks.append(("equal", ai, ai + 1, bj, bj + 1))
            i, j = ai + 1, bj + 1
        tasks.append(("range", i, a2, j, b2))
        return [*tasks, *tail]

    def _small(self, a1: int, a2: int, b1: int, b2: int) -> list[Opcode]:
        """An anchor-less gap: SequenceMatcher while small and within budget, else replaced."""
        pairs = (a2 - a1) * (b2 - b1)
        if pairs > _MATCHER_MAX_PAIRS or pairs > self.matcher_budget:
            return [("replace", a1, a2, b1, b2)]
        self.matcher_budget -= max(pairs, 400)  # also bounds the number of matchers built
        matcher = difflib.SequenceMatcher(None, self.a[a1:a2], self.b[b1:b2], autojunk=False)
        return [(tag, a1 + i1, a1 + i2, b1 + j1, b1 + j2)
                for tag, i1, i2, j1, j2 in matcher.get_opcodes()]


def _unique_anchors(a: list[str], b: list[str], a1: int, a2: int, b1: int,
                    b2: int) -> list[tuple[int, int]]:
    """Positions (i, j) of tokens occurring once in a[a1:a2] and once in b[b1:b2], keeping
    the longest run that is in the same order on both sides (patience diff)."""
    count_a = Counter(a[a1:a2])
    count_b = Counter(b[b1:b2])
    common = {t for t, n in count_b.items() if n == 1 and count_a.get(t) == 1}
    if not common:
        return []
    where_b = {b[j]: j for j in range(b1, b2) if b[j] in common}
    pairs = [(i, where_b[a[i]]) for i in range(a1, a2) if a[i] in where_b]
    # Longest increasing subsequence of the b positions, O(k log k).
    tails: list[int] = []  # tails[k]: smallest b position ending an increasing run of k + 1
    tail_index: list[int] = []
    previous: list[int] = []
    for index, (_, j) in enumerate(pairs):
        k = bisect.bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_index.append(index)
        else:
            tails[k] = j
            tail_index[k] = index
        previous.append(tail_index[k - 1] if k else -1)
    result = []
    index = tail_index[-1]
    while index >= 0:
        result.append(pairs[index])
        index = previous[index]
    result.reverse()
    return result


def _absorb_lone_spaces(ops: list[Opcode], a: list[str]) -> list[Opcode]:
    """A single space kept between two changes joins them ("<del>a b</del><ins>c d</ins>"
    reads better than two replacements around a space). Equal runs are maximal, so an equal
    run that is neither first nor last lies between two changes."""
    out: list[Opcode] = []
    for index, op in enumerate(ops):
        lone_space = op[0] == "equal" and op[2] - op[1] == 1 and a[op[1]].isspace() \
            and 0 < index < len(ops) - 1
        if out and out[-1][0] == "change" and (op[0] == "change" or lone_space):
            last = out.pop()
            out.append(("change", last[1], op[2], last[3], op[4]))
        else:
            out.append(op)
    return out


def diff_opcodes(a: list[str], b: list[str]) -> list[Opcode]:
    """difflib-style opcodes (equal, replace, delete, insert) turning tokens `a` into `b`."""
    return [(op[0] if op[0] == "equal" else
             "replace" if op[1] < op[2] and op[3] < op[4] else
             "delete" if op[1] < op[2] else "insert", *op[1:])
            for op in _absorb_lone_spaces(_Aligner(a, b).run(), a)]


def word_diff(old: str, new: str) -> Markup:
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    out: list[str] = []
    for op, i1, i2, j1, j2 in diff_opcodes(a, b):
        if op == "equal":
            out.append(str(escape("".join(a[i1:i2]))))
            continue
        if op in ("delete", "replace"):
            out.append(f"<del>{escape(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{escape(''.join(b[j1:j2]))}</ins>")
    return Markup("".join(out))


def diff_data(old: dict[str, Any] | None, new: dict[str, Any]) -> list[FieldDiff]:
    """The fields that differ, in declaration order. `old=None` shows every filled field as new."""
    diffs = []
    for f in FIELDS:
        old_text = as_text(f, (old or {}).get(f.name))
        new_text = as_text(f, new.get(f.name))
        if old_text != new_text:
            diffs.append(FieldDiff(f, old_text, new_text, word_diff(old_text, new_text)))
    return diffs
