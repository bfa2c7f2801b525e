"""`python -m tests.complexity PATH LIMIT`: fail when a function's cyclomatic complexity (radon)
is above LIMIT, naming each one."""

import json
import subprocess
import sys
from pathlib import Path


def main(path, limit):
    """Print every block above the limit; exit 1 when there is one."""
    radon = Path(sys.executable).parent / "radon"
    report = json.loads(
        subprocess.run([str(radon), "cc", "-j", path], capture_output=True, text=True).stdout
    )
    over = [
        f"{name}:{block['lineno']} {block['name']} ({block['complexity']})"
        for name, blocks in sorted(report.items())
        for block in blocks
        if isinstance(block, dict) and block.get("complexity", 0) > limit
    ]
    for line in over:
        print(f"cyclomatic complexity above {limit}: {line}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
