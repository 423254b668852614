# syntax=docker/dockerfile:1
# The image of all three services; the command chooses one:
#   <image>                                  spa's API on port 8000 (the default command)
#   <image> services.routing serve           routing's; likewise services.teams
#   <image> services.spa migrate             one service's migration (a one-shot job)
# The base is Debian bookworm with python3 and python3-venv (deploy/build-image.sh makes one
# from Debian's archive; any such image will do, e.g. BASE=docker.io/library/debian:bookworm
# with the two packages added).
ARG BASE=localhost/spa-platform-base:bookworm

FROM ${BASE} AS build
# A CA bundle for a network whose TLS is intercepted (build-image.sh passes the host's in).
ARG PIP_CERT=
# Every third-party file is checked against the hash requirements.lock records, then the
# project and its run-time dependencies are installed from those files alone (the lock also
# holds the development tools, which stay out of the image).
COPY requirements.lock /src/requirements.lock
RUN python3 -m venv /opt/wheels-venv \
    && /opt/wheels-venv/bin/pip download --no-cache-dir --disable-pip-version-check \
        --require-hashes --no-deps --only-binary=:all: ${PIP_CERT:+--cert "$PIP_CERT"} \
        -r /src/requirements.lock -d /wheels
COPY pyproject.toml README.md LICENSE /src/
COPY services /src/services
RUN /opt/wheels-venv/bin/pip wheel --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /wheels --no-deps -w /wheels /src \
    && python3 -m venv /opt/spa-platform \
    && /opt/spa-platform/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /wheels spa-platform \
    && /opt/spa-platform/bin/pip uninstall --yes pip

FROM ${BASE}
COPY --from=build /opt/spa-platform /opt/spa-platform
RUN groupadd --system --gid 10001 spa \
    && useradd --system --uid 10001 --gid spa --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin spa
ENV PATH=/opt/spa-platform/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# No files of its own are written: databases are PostgreSQL, settings and keys are mounted.
WORKDIR /opt/spa-platform
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["python", "-m"]
CMD ["services.spa", "serve", "--port", "8000"]
