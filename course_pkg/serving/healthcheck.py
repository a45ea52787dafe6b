"""Container HEALTHCHECK: exit 0 when this container's server answers /health/ready with 200.

    HEALTHCHECK CMD ["python", "-m", "course_pkg.serving.healthcheck"]

Standard library only (no curl in a slim image), reads the port as the server does
(``COURSE_SERVE_PORT``, else the platform's ``PORT``, else 8000) and always asks 127.0.0.1:
the check runs inside the container's own network namespace.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("COURSE_SERVE_PORT") or os.environ.get("PORT") or "8000"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as reply:
            return 0 if reply.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
