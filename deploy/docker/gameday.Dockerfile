# gameday:latest: the game-day runner that deploy/kubernetes/50-runner-cronjob.yaml runs:
# gameday with Chaos Toolkit and its extensions (pinned in pyproject.toml), the
# experiments in the working directory /app, uid/gid 10001, HOME=/tmp. Nothing is
# written to the root filesystem: reports go to /reports, the record of injected faults
# to /state (GAMEDAY_STATE_DIR), everything else to /tmp (emptyDirs in the CronJob).
#
# Build from the repository root:
#   docker build -t gameday:latest -f deploy/docker/gameday.Dockerfile .
# Not built on the project's machines (no Docker engine there): tests/unit/test_deploy.py
# checks it offline (COPY sources, user, command, image names).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gameday/ gameday/
COPY probes/ probes/
COPY actions/ actions/
COPY controls/ controls/
COPY lab/ lab/
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim-bookworm
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# chaos is found next to the venv's python; HOME holds Chaos Toolkit's settings.
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
WORKDIR /app
COPY experiments/ experiments/
USER 10001:10001
# The CronJob's command; `docker run gameday:latest` does the same.
CMD ["gameday", "run", "--target", "kubernetes", "--junit", "/reports/junit.xml", "--reports", "/reports"]
