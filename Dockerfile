# docmill: one image for every role; the command picks it (`supervise`, `serve`, `queue ...`).
#
#     docker build -t docmill .
#     docker run --rm --env-file .env docmill queue status
#
# Layers: uv, then the dependencies (rebuilt only when pyproject.toml or uv.lock change), then
# the source. Runs as the unprivileged user `docmill`; /app/storage is its only writable place.

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN pip install --no-cache-dir "uv>=0.5,<1" \
    && groupadd --system --gid 10001 docmill \
    && useradd --system --uid 10001 --gid docmill --home-dir /app --shell /usr/sbin/nologin docmill

WORKDIR /app

# Dependencies only: this layer is reused until the dependency list changes. uv.lock is used
# when the build context has one.
COPY pyproject.toml uv.lock* ./
RUN uv sync --no-dev --no-install-project

# The project itself, installed into the same environment (not editable: the image needs no
# source tree at run time, but keeps it for tracebacks).
COPY README.md ./
COPY src ./src
RUN uv sync --no-dev --no-editable \
    && mkdir -p /app/storage/logs \
    && chown -R docmill:docmill /app/storage

USER docmill

# SIGTERM is the graceful stop of `docmill supervise` (running jobs get stop_wait_s).
STOPSIGNAL SIGTERM

ENTRYPOINT ["docmill"]
CMD ["supervise"]
