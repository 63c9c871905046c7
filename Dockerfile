# The app image: gunicorn with the gevent websocket worker, configured by the environment.
#   docker build -t webapp .
#   docker run -e SECRET_KEY=... -e DATABASE_URL=... -e MESSAGE_QUEUE_URL=... -p 8000:8000 webapp
# compose.yaml runs it with PostgreSQL and Redis; deploy/README.md explains several hosts.

# Front-end assets from npm, copied like `make install` does (static/vendor is not committed).
FROM node:22-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
 && mkdir -p vendor \
 && cp node_modules/htmx.org/dist/htmx.min.js \
       node_modules/socket.io-client/dist/socket.io.min.js \
       node_modules/bootstrap/dist/css/bootstrap.min.css \
       node_modules/bootstrap/dist/js/bootstrap.bundle.min.js vendor/

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app

# Dependencies first (pinned in pyproject.toml), so code changes do not reinstall them. The
# package is installed in place: templates, static files and migrations stay beside it.
COPY pyproject.toml ./
RUN mkdir webapp && touch webapp/__init__.py && pip install -e . && rm -rf webapp
COPY webapp ./webapp
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY wsgi.py gunicorn.conf.py ./
COPY --from=assets /src/vendor ./static/vendor
RUN mkdir -p instance && chown app:app instance

USER app
# Listen on all interfaces inside the container; heartbeat files in memory, not on overlayfs.
ENV BIND=0.0.0.0:8000 \
    WORKER_TMP_DIR=/dev/shm
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=8)"]
# The very command the tests run (tests/e2e/server.py). Migrations run separately, once per
# release: `flask --app wsgi db upgrade` (the "migrate" service in compose.yaml).
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
