FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY providers ./providers
# The default config and prices are package data; the sources go once installed,
# so nothing (`python -m gateway` from /app included) runs them instead of the install.
RUN pip install --no-cache-dir . \
 && rm -rf /app/gateway /app/providers /app/build /app/*.egg-info \
 && useradd --system --uid 10001 --home-dir /app gateway \
 && mkdir -p /app/data && chown gateway /app/data

USER gateway
# No GATEWAY_PUBLIC_URL: video links use the host the client called. Mount your
# own config at /app/config/gateway.yaml (found from the working directory) or
# set GATEWAY_CONFIG; without either, the packaged default runs.
ENV GATEWAY_DATA_DIR=/app/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
