"""Write the scaler's own setting rules into charts/keda-queue-scaler/values.schema.json.

Usage: .venv/bin/python tools/chartschema.py      (rewrites the schema in place)

The allowBrokers and allowAwsEndpoints patterns (scaler.guard's grammars), the
logLevel and logFormat values and each bounded setting's maximum come from the
scaler, so the chart accepts exactly what `serve` starts with.
tests/chart/test_settings_agree.py fails when the schema is not current.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "charts" / "keda-queue-scaler" / "values.schema.json"


def updated(schema: dict[str, Any]) -> dict[str, Any]:
    from scaler import settings
    from scaler.guard import BROKER_GRAMMAR, ENDPOINT_GRAMMAR

    config = schema["properties"]["config"]["properties"]
    config["allowBrokers"]["items"] = {"type": "string", "pattern": f"^(?:{BROKER_GRAMMAR})$"}
    config["allowAwsEndpoints"]["items"] = {
        "type": "string",
        "pattern": f"^(?:{ENDPOINT_GRAMMAR})$",
    }
    config["logLevel"]["enum"] = list(settings.LOG_LEVELS)
    config["logFormat"]["enum"] = list(settings.LOG_FORMATS)
    for name, top in settings.MAXIMA.items():
        head, *rest = name.split("_")
        config[head + "".join(word.title() for word in rest)]["maximum"] = top
    return schema


def main() -> int:
    sys.path.insert(0, str(ROOT))
    SCHEMA.write_text(json.dumps(updated(json.loads(SCHEMA.read_text())), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
