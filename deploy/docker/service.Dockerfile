# broker-integration:latest: the lab's reference broker-integration service
# (`python -m lab.service`) as deploy/kubernetes/10-broker-integration.yaml runs it:
# HTTP on :8080 (/orders, /health, /ready, /metrics: the contract in docs/contract.md), the broker
# reached at $BROKER_URL (set by the Deployment), uid/gid 10001, nothing written to the
# root filesystem (logs go to stderr; the Deployment mounts an emptyDir on /tmp).
#
# Build from the repository root:
#   docker build -t broker-integration:latest -f deploy/docker/service.Dockerfile .
# Not built on the project's machines (no Docker engine there): tests/unit/test_deploy.py
# checks it offline (COPY sources, user, command, image names).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
# Only what the service needs: its four libraries, the lab package (which imports nothing
# of gameday but gameday.contract and gameday.http1) and those two modules
# (docs/architecture.md, layers).
COPY deploy/docker/service-requirements.txt /tmp/service-requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/service-requirements.txt
COPY gameday/__init__.py gameday/contract.py gameday/http1.py /app/gameday/
COPY lab/ /app/lab/
RUN /opt/venv/bin/python -m compileall -q /app

FROM python:3.11-slim-bookworm
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# Bytecode was compiled at install time; never try to write it on a read-only root.
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# `python -m` puts the working directory first on sys.path: make it one nobody can write.
WORKDIR /
USER 10001:10001
EXPOSE 8080
# exec: Python is PID 1 and gets SIGTERM itself (it drains: /ready 503, then in-flight
# orders finish). The replica is named after its pod (HOSTNAME) in /health and its logs.
CMD ["sh", "-c", "exec python -m lab.service --host 0.0.0.0 --port 8080 --broker-url \"$BROKER_URL\" --name \"${HOSTNAME:-broker-integration}\""]
