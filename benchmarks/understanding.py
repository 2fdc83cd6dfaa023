"""Understanding benchmark: how well, and how fast, the assistant reads what people text.

    .venv/bin/python benchmarks/understanding.py [--corpus DIR] [--misses] [--repeat 5]

Reads the labelled corpus (tests/understanding/corpus/ unless --corpus names another
folder with the same three files) through `assistant.engine.understanding.read` with the
shipped phrases/en-GB files, and prints:

- risk: sensitivity (risk texts read as risk) per category and overall, and the
  false-alarm rate (ordinary texts read as risk) per category and overall;
- the other signals (call, cancel, rebook, stop, pause, wrong_person, new_number, help):
  per-signal recall and false alarms on signals.tsv;
- the time per text, against a baseline in the same run: the old normalise-and-lookup
  of a text (`assistant.engine.text.normalise`), so the ratio shows what the reading costs.

--misses lists every text read wrongly, to review with a clinician.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.content.library import Catalog, FlowLibrary, PhraseLibrary  # noqa: E402
from assistant.engine.text import normalise  # noqa: E402
from assistant.engine.understanding import read  # noqa: E402

OTHER_SIGNALS = ("call", "cancel", "rebook", "stop", "pause", "wrong_person", "new_number", "help")


def load(path: Path, fields: int) -> list[list[str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != fields:
            raise SystemExit(f"{path}:{number}: expected {fields} tab-separated fields")
        rows.append(parts)
    return rows


def print_rates(by_category: dict[str, list[bool]]) -> None:
    """A row a category (how many of its texts were read as risk, of how many, and the share), then overall."""
    if not by_category:
        print("  (none in this corpus)\n")
        return
    count = total = 0
    for category, hits in sorted(by_category.items()):
        count += len(hits)
        total += sum(hits)
        print(f"  {category:30} {sum(hits):8} {len(hits):5} {100 * sum(hits) / len(hits):11.1f}%")
    print(f"  {'overall':30} {total:8} {count:5} {100 * total / count:11.1f}%\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "tests" / "understanding" / "corpus")
    parser.add_argument("--misses", action="store_true", help="list every text read wrongly")
    parser.add_argument("--repeat", type=int, default=5, help="timing passes over the corpus")
    args = parser.parse_args()

    started = time.perf_counter()
    phrases = PhraseLibrary(ROOT / "phrases").get("en-GB")
    load_ms = (time.perf_counter() - started) * 1000
    # A set written for risk alone has no other signals to check; one written for them, no risk files.
    risk, ordinary, signals = (
        load(args.corpus / name, fields) if (args.corpus / name).exists() else []
        for name, fields in (("risk.tsv", 2), ("not_risk.tsv", 2), ("signals.tsv", 3))
    )

    print(f"corpus {args.corpus}: {len(risk)} risk, {len(ordinary)} ordinary, {len(signals)} signal texts")
    print(f"phrases compiled and self-checked in {load_ms:.0f} ms\n")

    misses: list[str] = []
    print(f"{'risk texts by category':32} {'caught':>8} {'of':>5} {'sensitivity':>12}")
    by_category: dict[str, list[bool]] = defaultdict(list)
    for category, text in risk:
        hit = read(text, phrases).has("risk")
        by_category[category].append(hit)
        if not hit:
            misses.append(f"MISSED risk [{category}] {text}")
    print_rates(by_category)

    print(f"{'ordinary texts by category':32} {'alarms':>8} {'of':>5} {'false alarms':>12}")
    by_category = defaultdict(list)
    for category, text in ordinary:
        reading = read(text, phrases)
        alarm = reading.has("risk")
        by_category[category].append(alarm)
        if alarm:
            misses.append(f"ALARM [{category}] {text}  <- {reading.words('risk')}")
    print_rates(by_category)

    print(f"{'other signals':32} {'recall':>10} {'false alarms':>14}")
    # A reply to a reminder is read through the reminder's question, as the assistant reads it:
    # its NO is a cancellation (in the participant's own words too).
    flows = FlowLibrary(ROOT / "flows", Catalog(ROOT / "messages"))
    reminder = flows.get("appointment_reminder")
    question = reminder.nodes["remind"].ask if reminder else None
    truth: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for labels, context, text in signals:
        expected = set(labels.split(","))
        reading = read(text, phrases, question if context == "reminder" else None)
        found = set(reading.kinds())
        if "opt_out" in found:  # the carrier's STOP: the strongest way of asking to stop
            found.add("stop")
        if context == "reminder" and reading.answer is not None:
            found.add({"no": "cancel", "yes": "confirm"}.get(reading.answer.value, ""))
        for signal in (*OTHER_SIGNALS, "risk"):
            truth[signal].append((signal in expected, signal in found))
            if (signal in expected) != (signal in found):
                which = "MISSED" if signal in expected else "EXTRA"
                misses.append(f"{which} {signal}: {text}  (labelled {labels}, read {sorted(found)})")
    for signal in (*OTHER_SIGNALS, "risk"):
        pairs = truth[signal]
        positives = [f for e, f in pairs if e]
        negatives = [f for e, f in pairs if not e]
        recall = f"{sum(positives)}/{len(positives)}" if positives else "-"
        alarms = f"{sum(negatives)}/{len(negatives)}"
        print(f"  {signal:30} {recall:>10} {alarms:>14}")

    texts = [t for _, t in risk] + [t for _, t in ordinary] + [t for _, _, t in signals]
    reading_times, baseline_times = [], []
    for _ in range(args.repeat):
        began = time.perf_counter()
        for text in texts:
            normalise(text)
        baseline_times.append((time.perf_counter() - began) / len(texts))
        began = time.perf_counter()
        for text in texts:
            read(text, phrases)
        reading_times.append((time.perf_counter() - began) / len(texts))
    reading = statistics.median(reading_times) * 1e6
    baseline = statistics.median(baseline_times) * 1e6
    print(
        f"\ntime per text: {reading:.0f} us to read every signal; baseline (normalise only) "
        f"{baseline:.1f} us; ratio {reading / baseline:.0f}x; median of {args.repeat} passes over {len(texts)} texts"
    )
    if args.misses:
        print("\n" + "\n".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
