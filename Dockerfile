# The gateway's image: the package and its dependencies in a venv, on a Debian bookworm Python 3.11.
#
#   docker build -t gateway .
#   docker run -p 8080:8080 gateway
#
# BASE selects the base image of both stages: the official Python image by default, pinned by tag and
# digest; tests/test_container.py passes a Debian bookworm root filesystem of its own
# (--build-arg BASE=localhost/...) where no registry can be reached. Any base with python3 (3.11 or
# newer), its venv module, groupadd and useradd works: the venv is made by `python3 -m venv`, and the
# final stage uses the same base, so the venv's interpreter link points at the same python3 in both.
#
# Two images from this one file: the gateway (the default, last stage) and the GPU video worker
# (`--target worker --build-arg EXTRAS=local`: the `local` extra, torch with CUDA and diffusers):
#
#   docker build --target worker --build-arg EXTRAS=local -t gateway-worker .
ARG BASE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# --- build: a wheel of this tree, installed with its dependencies into the venv /opt/gateway -----------
FROM ${BASE} AS build
# Extras of the package to install beside it (`local` for the worker image); none for the gateway.
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python3 -m venv /opt/gateway
# The dependencies first, read from pyproject.toml alone, so their layer is reused while only the
# sources change. The base package only: the `local` extra (torch) belongs on GPU workers, not here.
# Behind a proxy that re-signs TLS, pass its CA bundle as the secret `pip-ca`
# (`--secret id=pip-ca,src=ca.pem`): pip trusts it for this stage's downloads, and a secret is never
# written into a layer. Without it, pip's own CA list is used.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
        > /tmp/requirements.txt \
 && /opt/gateway/bin/pip install -q -r /tmp/requirements.txt
COPY README.md ./
COPY gateway ./gateway
COPY providers ./providers
# A wheel, as `pip install gateway` would get, so no source tree or editable link reaches the image;
# `pip check` fails the build if the wheel wants something the layer above did not install. pip and
# setuptools leave the venv last: nothing installs at run time.
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && /opt/gateway/bin/pip wheel -q --no-deps -w /tmp/dist . \
 && wheel="$(ls /tmp/dist/gateway-*.whl)" \
 && if [ -n "$EXTRAS" ]; then /opt/gateway/bin/pip install -q "${wheel}[${EXTRAS}]"; \
    else /opt/gateway/bin/pip install -q --no-deps "$wheel"; fi \
 && /opt/gateway/bin/pip check \
 && /opt/gateway/bin/pip uninstall -q -y pip setuptools

# --- runtime: the venv and a data folder; no compilers, no pip cache, no sources ------------------------
FROM ${BASE} AS runtime
# A fixed uid and gid, so a mounted data volume's owner and Kubernetes' runAsNonRoot can rely on them.
RUN groupadd --gid 10001 gateway \
 && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin gateway \
 && mkdir -p /app/data \
 && chown 10001:10001 /app/data
COPY --from=build /opt/gateway /opt/gateway

WORKDIR /app
USER 10001:10001
ENV PATH=/opt/gateway/bin:$PATH \
    GATEWAY_DATA_DIR=/app/data \
    PYTHONUNBUFFERED=1

# --- the GPU video worker: `gateway worker` (build it with EXTRAS=local) -------------------------------
FROM runtime AS worker
# HOME: torch and Hugging Face keep their caches under it, and the root file system may be read-only
# (compose and the Helm chart mount a writable /tmp). The weights are read from a mounted folder (the
# provider's `pipeline`), never downloaded.
ENV HOME=/tmp \
    HF_HUB_OFFLINE=1
CMD ["gateway", "worker"]

# --- the gateway (the default target) -------------------------------------------------------------------
FROM runtime AS gateway
# No GATEWAY_PUBLIC_URL: video links use the host the client called. Mount your own config at
# /app/config/gateway.yaml (found from the working directory) or set GATEWAY_CONFIG; without either,
# the packaged default runs.
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
