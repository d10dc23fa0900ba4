"""Run every benchmark and print its figures (``make bench``); results also go to bench/results/."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main() -> None:
    import asyncio

    from bench.auth import bench_auth, bench_signin
    from bench.devices import bench_delivery, bench_devices, bench_mqtt, bench_window
    from bench.payments import bench_payments
    from bench.phi import bench_phi
    from bench.synthetic import bench_synthetic

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "auth": bench_auth.main(),
        "auth_signin": bench_signin.main(),
        "phi": bench_phi.main(),
        "synthetic": bench_synthetic.main(),
        "payments": bench_payments.main(),
        "devices_http": bench_devices.main(),
        "devices_mqtt": bench_mqtt.main(),
        "devices_delivery": bench_delivery.main(),
        "devices_window": asyncio.run(bench_window.main()),
    }
    (out / "latest.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
