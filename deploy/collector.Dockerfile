# xanet collector image. Build from the repository root:
#   docker build -f deploy/collector.Dockerfile -t xanet-collector .
# (deploy/compose.yaml does this.) Runs as an unprivileged user; state
# (dead letters) in /var/lib/xanet, config in /etc/xanet/collector.toml.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY xanet ./xanet
COPY collector ./collector
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/xanet \
        --shell /usr/sbin/nologin xanet \
    && install -d -o xanet -g xanet -m 700 /var/lib/xanet /var/lib/xanet/dead-letter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir "$(ls /wheels/xanet-*.whl)[collector]" && rm -rf /wheels
USER xanet
WORKDIR /var/lib/xanet
VOLUME ["/var/lib/xanet"]
ENTRYPOINT ["xanet"]
CMD ["collector", "--config", "/etc/xanet/collector.toml"]
