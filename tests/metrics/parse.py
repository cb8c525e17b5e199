"""Parses a Prometheus text exposition on stdin with the official client's parser (which
raises on a malformed line) and prints, as JSON, every family's type and every sample:
family, name, labels, value."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = family.type
    for sample in family.samples:
        value = sample.value
        samples.append({
            "family": family.name,
            "name": sample.name,
            "labels": sample.labels,
            "value": None if math.isnan(value) or math.isinf(value) else value,
        })
print(json.dumps({"families": families, "samples": samples}))
