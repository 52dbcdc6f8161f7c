# syntax=docker/dockerfile:1
# One image for the operator and every component: `tradingsystem component NAME` or
# `kopf run -m trading_operator.handlers` (the operator and the chart set the command).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Builder: build the project's wheel and install it with its dependencies into a venv.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY components ./components
COPY operator ./operator
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install /wheels/tradingsystem-*.whl \
 && /opt/venv/bin/pip uninstall --yes pip \
 # Compiled now: with a read-only root filesystem nothing can be written at run time.
 && /opt/venv/bin/python -m compileall -q /opt/venv

# Final: the venv, a fixed non-root user, no compilers, no pip, no source tree.
FROM ${PYTHON_IMAGE}
ARG UID=10001
RUN groupadd --system --gid ${UID} trading \
 && useradd --system --uid ${UID} --gid ${UID} --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin trading \
 && install -d -o ${UID} -g ${UID} /var/lib/tradingsystem \
 && python -m pip uninstall --yes pip setuptools wheel
COPY --from=builder /opt/venv /opt/venv
# The sample data, so that examples/replay.yaml runs from the working directory.
COPY examples/data /app/examples/data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    TS_DATA_DIR=/var/lib/tradingsystem
WORKDIR /app
# Writable only on volumes: /tmp (an emptyDir) and the state directory (a PVC).
VOLUME ["/tmp", "/var/lib/tradingsystem"]
USER ${UID}:${UID}
EXPOSE 8080
CMD ["tradingsystem", "--help"]
