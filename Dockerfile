# docmill: one image for every role; the command picks it (`supervise`, `serve`, `queue ...`).
#
#     docker build -t docmill .
#     docker run --rm --env-file .env docmill queue status
#
# Layers: uv and an empty virtualenv, then the pinned dependencies of requirements.txt (rebuilt
# only when that file changes), then the project itself without dependencies, so the image
# holds exactly the versions the tests ran with. Runs as the unprivileged user `docmill`;
# /app/storage is its only writable place.
#
# BASE_IMAGE is any Debian-like image with python3 (3.11), pip, venv, groupadd and useradd.
# Where no image registry answers, build one locally (deploy/check-image.sh --make-base) and
# pass it: podman build --pull=never --build-arg BASE_IMAGE=local/python:3.11-slim .
# deploy/check-image.sh builds this image and runs the demo and the API's health check in it.

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# The installer's version, pinned too so a rebuild installs the same way.
ARG UV_VERSION=0.13.10

# UV_SYSTEM_CERTS: uv trusts the image's CA store (ca-certificates), as pip does, so an index
# behind a proxy with its own CA works once the base image trusts that CA.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_SYSTEM_CERTS=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python3 -m pip install --no-cache-dir "uv==${UV_VERSION}" \
    && uv venv --python python3 "$VIRTUAL_ENV" \
    && groupadd --system --gid 10001 docmill \
    && useradd --system --uid 10001 --gid docmill --home-dir /app --shell /usr/sbin/nologin docmill

WORKDIR /app

# The pinned dependencies only: this layer is reused until requirements.txt changes.
COPY requirements.txt ./
RUN uv pip install --requirement requirements.txt

# The project itself, into the same environment and without dependencies (the pins above are
# all it gets); `uv pip check` fails the build if the pins lack anything pyproject.toml asks
# for. The wheel carries the demo's documents (pyproject.toml force-includes examples/documents).
COPY pyproject.toml README.md ./
COPY src ./src
COPY examples/documents ./examples/documents
RUN uv pip install --no-deps . \
    && uv pip check \
    && mkdir -p /app/storage/logs \
    && chown -R docmill:docmill /app/storage

USER docmill

# SIGTERM is the graceful stop of `docmill supervise` (running jobs get stop_wait_s).
STOPSIGNAL SIGTERM

ENTRYPOINT ["docmill"]
CMD ["supervise"]
