# secretscan as a container image: `docker run --rm -v /var/run/docker.sock:/var/run/docker.sock
# secretscan:0.1.0 scan myapp:1.4`, or `… scan docker://registry/app:1` with no socket at all.
#
# Built by `make image`, which first builds the wheels of secretscan and its dependencies into
# build/wheels with the project's Python. The build itself needs no network, and BASE must have
# that same Python minor version with its venv module.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS install
COPY build/wheels /wheels
RUN python3 -m venv /opt/secretscan \
 && /opt/secretscan/bin/pip install --no-index --no-cache-dir --find-links /wheels secretscan \
 && find /opt/secretscan -name '__pycache__' -prune -exec rm -rf {} +

FROM ${BASE}
COPY --from=install /opt/secretscan /opt/secretscan
RUN useradd --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin secretscan
ENV PATH=/opt/secretscan/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_CACHE_HOME=/tmp/secretscan-cache
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["secretscan"]
CMD ["--help"]
