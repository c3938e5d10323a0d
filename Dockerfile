# syntax=docker/dockerfile:1
#
# Parlance in a container: the server and its chat page, running as a non-root user, with the
# conversation store and the model cache on volumes. Build:  docker build -t parlance .
# Run:  docker run -p 8000:8000 -v parlance-data:/data -v parlance-models:/models parlance
# See docs/deployment.md (compose.yaml runs it beside PostgreSQL and a vLLM upstream).

ARG NODE_VERSION=22

# ---- build: every dependency (dev ones too), then the server (tsc) and the chat page (vite) ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
# Only used when a native module (better-sqlite3) has no prebuilt binary for this platform.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json npm-shrinkwrap.json ./
# `npm ci` can refuse a lockfile whose optional per-platform packages a registry does not serve; `npm install`
# then installs the same locked versions for this platform (as .ci/run does).
RUN npm ci --no-audit --no-fund || npm install --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.build.json \
 && if [ -f web/vite.config.ts ]; then npx vite build -c web/vite.config.ts --logLevel warn; fi

# ---- deps: production dependencies only, built on the same base as the runtime ----
FROM node:${NODE_VERSION}-bookworm-slim AS deps
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json npm-shrinkwrap.json ./
RUN (npm ci --omit=dev --no-audit --no-fund || npm install --omit=dev --no-audit --no-fund) && npm cache clean --force

# ---- runtime: node, the production dependencies, the compiled server and the built page ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PARLANCE_HOST=0.0.0.0 \
    PARLANCE_PORT=8000 \
    PARLANCE_DATA_DIR=/data \
    PARLANCE_MODELS_DIR=/models
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/package.json ./package.json
# dist/src is the server; dist/web (the chat page) is there when web/ was built, and the server falls
# back to a minimal page without it.
COPY --from=build /app/dist ./dist
RUN mkdir -p /data /models && chown node:node /data /models
# The image's unprivileged user (uid 1000): the app files stay root-owned and read-only to it.
USER node
VOLUME ["/data", "/models"]
EXPOSE 8000
# /health answers while the server is loaded (it is never shed); the first start may download the
# default model (~490 MB) before it listens, hence the long start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PARLANCE_PORT || 8000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM from `docker stop` itself; Parlance then stops accepting, ends
# every open stream with its last event, saves partial replies and exits within 10 s.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/cli.js", "serve"]
