# opdiag: the diagnosis service Grafana talks to. Also runs the simulated KTRDR services of the
# demo stack (docker-compose.yml), which use the same image with another command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPDIAG_DEMO_TRACES=/app/demo/traces \
    OPDIAG_HOST=0.0.0.0 \
    OPDIAG_PORT=8080 \
    OPDIAG_STORE_PATH=/var/lib/opdiag/verdicts.sqlite3

WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY dashboards ./dashboards
COPY demo ./demo
# The same package the README installs (make installs it editable with its test extras).
# /var/lib/opdiag holds the verdict store (a volume in docker-compose.yml), opdiag's to write.
RUN pip install --no-cache-dir '.[demo]' \
    && install -d -o 10001 /var/lib/opdiag \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin opdiag

USER opdiag
VOLUME /var/lib/opdiag
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=3).status == 200 else 1)"]
CMD ["opdiag", "serve"]
