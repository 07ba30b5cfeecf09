"""Strict check of a Prometheus text exposition read from stdin (planex's tests run it).

Parses with prometheus_client's parser, then fails on what that parser lets through: a family
of unknown type (a sample line whose name matches no TYPE, e.g. a histogram's `_count` rendered
without its suffix), a family that appears twice, a sample whose name does not fit its family's
type, a summary (planex sets explicit histogram buckets), and a histogram without its +Inf
bucket, `_sum` and `_count`, or whose buckets are not cumulative or disagree with `_count`.

Arguments: `NAME` or `NAME:LABEL,LABEL` for each family that must be present, with a sample
carrying those labels. Exit status 0 when everything holds; else 1, with one line per problem.
"""

import math
import sys

from prometheus_client.parser import text_string_to_metric_families

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def check_histogram(family, problems):
    """Checks each label set of a histogram: +Inf bucket, cumulative buckets, _sum, _count."""
    series = {}
    for sample in family.samples:
        labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        entry = series.setdefault(labels, {"buckets": [], "sum": None, "count": None})
        if sample.name.endswith("_bucket"):
            if "le" not in sample.labels:
                problems.append(f"{sample.name}{dict(labels)}: a bucket without le")
                continue
            entry["buckets"].append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_sum"):
            entry["sum"] = sample.value
        elif sample.name.endswith("_count"):
            entry["count"] = sample.value
    for labels, entry in series.items():
        where = f"histogram {family.name}{dict(labels)}"
        buckets = sorted(entry["buckets"])
        if not buckets or not math.isinf(buckets[-1][0]):
            problems.append(f"{where}: no +Inf bucket")
            continue
        if entry["sum"] is None or entry["count"] is None:
            problems.append(f"{where}: missing _sum or _count")
            continue
        values = [value for _, value in buckets]
        if values != sorted(values):
            problems.append(f"{where}: buckets are not cumulative: {buckets}")
        if values[-1] != entry["count"]:
            problems.append(f"{where}: +Inf bucket {values[-1]} != _count {entry['count']}")


def main():
    text = sys.stdin.read()
    problems = []
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser's own refusal is a failure with its message
        print(f"the exposition does not parse: {error!r}")
        return 1
    seen = {}
    for family in families:
        if family.name in seen:
            problems.append(f"family {family.name} appears twice ({seen[family.name]}, {family.type})")
        seen[family.name] = family.type
        suffixes = SUFFIXES.get(family.type)
        if suffixes is None:
            names = sorted({s.name for s in family.samples})
            problems.append(f"family {family.name} has type {family.type}: samples {names}")
            continue
        for sample in family.samples:
            if not any(sample.name == family.name + suffix for suffix in suffixes):
                problems.append(f"{family.type} {family.name}: stray sample {sample.name}")
        if family.type == "histogram":
            check_histogram(family, problems)
    by_name = {family.name: family for family in families}
    for wanted in sys.argv[1:]:
        name, _, labels = wanted.partition(":")
        labels = {label for label in labels.split(",") if label}
        # The parser names a counter family without its `_total`.
        family = by_name.get(name) or by_name.get(name.removesuffix("_total"))
        if family is None:
            problems.append(f"{name} is missing")
            continue
        if not any(labels <= set(sample.labels) for sample in family.samples):
            problems.append(f"{name} has no sample with labels {sorted(labels)}")
    for problem in problems:
        print(problem)
    print(f"{len(families)} families, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
