"""Summarise py-spy's raw (collapsed) output: where the time goes, per thread.

    python bench/stacks.py PROFILE.txt [--top 25]

Prints, per thread, the share of samples and the top functions by inclusive
time (a function counted once per sample however deep it recurses) and by
own time (the leaf frame)."""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    file = m.group("file")
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({file})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    by_thread: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    own: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    for line in open(args.profile, encoding="utf-8"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        thread = re.sub(r"\s*\(?0x[0-9a-f]+\)?", "", frames[0])
        names = [short(f) for f in frames[1:]]
        total += n
        by_thread[thread] += n
        for name in set(names):
            inclusive[thread][name] += n
        if names:
            own[thread][names[-1]] += n
    print(f"{total} samples")
    for thread, n in by_thread.most_common():
        print(f"\n== {thread}: {n} samples ({100 * n / total:.1f}%)")
        print("  inclusive:")
        for name, c in inclusive[thread].most_common(args.top):
            print(f"    {100 * c / n:5.1f}%  {name}")
        print("  own:")
        for name, c in own[thread].most_common(args.top // 2):
            print(f"    {100 * c / n:5.1f}%  {name}")


if __name__ == "__main__":
    main()
