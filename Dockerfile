# The dgdr service image (used by compose.yaml and k8s/manifests/deployment.yaml). Connects to the
# NATS given by DGDR_NATS_URL. Dependencies are installed in their own layer, from the lockfile
# alone, before the source is copied: a code change rebuilds only the last layers.
FROM python:3.11-slim
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY dgdr dgdr
COPY events events
COPY projections projections
COPY sim sim
COPY k8s k8s
COPY examples examples
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev
ENV PATH="/app/.venv/bin:$PATH"
# The default data dir, writable by the user the image runs as.
RUN mkdir .dgdr && chown 1000:1000 .dgdr
# 8080: Prometheus metrics, /healthz and /readyz (with --metrics-addr :8080); 9443: the webhooks.
EXPOSE 8080 9443
USER 1000:1000
CMD ["dgdr", "up", "--no-embedded", "--metrics-addr", ":8080"]
