#!/usr/bin/python3
"""Reads a Prometheus text exposition (a URL or a file) with the Prometheus project's own Python
parser and prints what it found as JSON, for the C++ tests to assert on:
  {"content_type": "...", "families": [{"name", "type", "help"}], "samples": [{"name", "labels", "value"}]}
Exits 1, with the parser's error on stderr, when the page is not valid exposition text."""
import json
import math
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    source = sys.argv[1]
    content_type = ""
    if source.startswith("http://"):
        with urllib.request.urlopen(source, timeout=10) as response:
            content_type = response.headers.get("Content-Type", "")
            text = response.read().decode("utf-8")
    else:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    families, samples = [], []
    try:
        for family in text_string_to_metric_families(text):
            families.append({"name": family.name, "type": family.type, "help": family.documentation})
            for s in family.samples:
                value = s.value
                if math.isinf(value) or math.isnan(value):
                    value = str(value)
                samples.append({"name": s.name, "labels": s.labels, "value": value})
    except Exception as e:  # the parser raises ValueError (and others) on malformed input
        print(f"not valid Prometheus text: {e}", file=sys.stderr)
        return 1
    json.dump({"content_type": content_type, "families": families, "samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
