FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY providers ./providers
COPY config ./config
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --home-dir /app gateway \
 && mkdir -p /app/data && chown gateway /app/data

USER gateway
ENV GATEWAY_CONFIG=/app/config/gateway.yaml \
    GATEWAY_DATA_DIR=/app/data \
    GATEWAY_PUBLIC_URL=http://127.0.0.1:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
