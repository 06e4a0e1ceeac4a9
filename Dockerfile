# The dgdr service image (used by compose.yaml). Connects to the NATS given by DGDR_NATS_URL.
FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY dgdr dgdr
COPY events events
COPY projections projections
COPY sim sim
COPY k8s k8s
COPY examples examples
RUN uv sync --locked --no-dev
ENV PATH="/app/.venv/bin:$PATH"
CMD ["dgdr", "up", "--no-embedded"]
