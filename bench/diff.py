"""Word diff: the bounded patience diff (kb/sheets/diff.py) against the previous implementation.

    .venv/bin/python -m bench.diff                      # 20,000-character fields
    .venv/bin/python -m bench.diff --chars 1000         # a size the old diff still finishes
    .venv/bin/python -m bench.diff --old-timeout 60     # wait longer for the old one

Both implementations diff the same pairs of fields in the same run: ordinary edits of prose
built from the seed texts' words, a complete rewrite, and repetitive texts that made the old
`SequenceMatcher(autojunk=False)` over all tokens cubic. The old one runs in a child process
stopped after --old-timeout seconds (shown as "> N s"). The new one must stay within 100 ms
on every pair (its worst of --repeat runs is printed).

Times are CPU time of the process (`time.process_time`): the machine is shared, and wall time
would mostly measure the neighbours. "marqué" is the number of characters inside <del>/<ins>
(lower is a finer diff); the old diff, when it finishes, gives the reference.
"""

from __future__ import annotations

import argparse
import difflib
import multiprocessing
import random
import re
import statistics
import time
from collections.abc import Callable

from markupsafe import Markup, escape

from bench.corpus import seed_words
from kb.sheets.diff import word_diff

LIMIT_MS = 100.0

# --- the previous implementation, verbatim (the baseline) -----------------------------------

_TOKENS = re.compile(r"\s+|[^\s\w]|\w+")


def old_word_diff(old: str, new: str) -> Markup:
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(str(escape("".join(a[i1:i2]))))
            continue
        if op in ("delete", "replace"):
            out.append(f"<del>{escape(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{escape(''.join(b[j1:j2]))}</ins>")
    return Markup("".join(out))


# --- inputs ---------------------------------------------------------------------------------

def prose(rng: random.Random, chars: int) -> str:
    words, weights = seed_words()
    paragraphs, size = [], 0
    while size < chars:
        sentences = [" ".join(rng.choices(words, weights, k=rng.randint(8, 20))).capitalize() + "."
                     for _ in range(rng.randint(2, 5))]
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:chars]


def edit_words(rng: random.Random, text: str, count: int) -> str:
    words = text.split(" ")
    for _ in range(count):
        words[rng.randrange(len(words))] = rng.choice(("nouveau", "modifié", "2026", "— ajout —"))
    return " ".join(words)


def rewrite_paragraphs(rng: random.Random, text: str, count: int) -> str:
    paragraphs = text.split("\n\n")
    for _ in range(count):
        paragraphs[rng.randrange(len(paragraphs))] = prose(rng, 400)
    return "\n\n".join(paragraphs)


def cases(chars: int, seed: int = 7) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    base = prose(rng, chars)
    half = chars // 2
    unique = " ".join(f"mot{i}" for i in range(chars // 8))
    return [
        ("prose, 1 mot modifié", base, edit_words(rng, base, 1)),
        ("prose, 30 mots modifiés", base, edit_words(rng, base, 30)),
        ("prose, 3 paragraphes réécrits", base, rewrite_paragraphs(rng, base, 3)),
        ("prose, réécriture complète", base, prose(random.Random(seed + 1), chars)),
        ("répétitif « a b » → « a c »", "a b " * (chars // 4), "a c " * (chars // 4)),
        ("répétitif « x » → « x y »", "x " * half, "x y " * (chars // 4)),
        ("répétitif « a » → « a- »", "a " * half, "a-" * half),
        ("mots uniques, un sur deux changé", unique, " ".join(
            w if i % 2 else "autre" for i, w in enumerate(unique.split(" ")))),
        ("caractères aléatoires « ab c.\\n »",
         "".join(rng.choice("ab c.\n") for _ in range(chars)),
         "".join(rng.choice("ab c.\n") for _ in range(chars))),
    ]


# --- timing ---------------------------------------------------------------------------------

_MARKED = re.compile(r"<(del|ins)>(.*?)</\1>", re.S)


def marked(html: str) -> int:
    return sum(len(m.group(2)) for m in _MARKED.finditer(html))


def time_once(function: Callable[[str, str], Markup], old: str,
              new: str) -> tuple[float, int]:
    start = time.process_time()
    html = function(old, new)
    return time.process_time() - start, marked(html)


def _old_in_child(old: str, new: str, queue: multiprocessing.Queue[tuple[float, int]]) -> None:
    queue.put(time_once(old_word_diff, old, new))


def time_old(old: str, new: str, timeout: float) -> tuple[float, int] | None:
    """Seconds taken by the old diff and its marked characters, or None when it was stopped
    after `timeout` seconds."""
    queue: multiprocessing.Queue[tuple[float, int]] = multiprocessing.Queue()
    child = multiprocessing.Process(target=_old_in_child, args=(old, new, queue))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.terminate()
        child.join()
        return None
    return queue.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=20_000, help="characters per field")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the new diff per pair")
    parser.add_argument("--old-timeout", type=float, default=20.0,
                        help="seconds after which the old diff is stopped")
    args = parser.parse_args()

    print(f"Champs de {args.chars} caractères ; nouveau : pire de {args.repeat} passages ; "
          f"ancien : un passage, arrêté après {args.old_timeout:g} s.")
    print(f"{'cas':<36} {'nouveau ms':>10} {'médiane':>8} {'ancien ms':>10} {'ratio':>8}"
          f" {'marqué nouveau':>15} {'marqué ancien':>14}")
    worst = 0.0
    for label, old, new in cases(args.chars):
        runs = [time_once(word_diff, old, new) for _ in range(args.repeat)]
        new_ms = max(seconds for seconds, _ in runs) * 1000
        median_ms = statistics.median(seconds for seconds, _ in runs) * 1000
        new_marked = runs[0][1]
        worst = max(worst, new_ms)
        baseline = time_old(old, new, args.old_timeout)
        if baseline is None:
            old_text, ratio = f"> {args.old_timeout * 1000:.0f}", \
                f"> {args.old_timeout * 1000 / max(new_ms, 0.1):.0f}×"
            old_marked = "—"
        else:
            old_text = f"{baseline[0] * 1000:.1f}"
            ratio = f"{baseline[0] * 1000 / max(new_ms, 0.1):.0f}×"
            old_marked = str(baseline[1])
        print(f"{label:<36} {new_ms:>10.1f} {median_ms:>8.1f} {old_text:>10} {ratio:>8}"
              f" {new_marked:>15} {old_marked:>14}", flush=True)
    verdict = "OK" if worst <= LIMIT_MS else "TROP LENT"
    print(f"Pire cas du nouveau diff : {worst:.1f} ms (objectif ≤ {LIMIT_MS:.0f} ms) : {verdict}")


if __name__ == "__main__":
    main()
