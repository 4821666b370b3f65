# syntax=docker/dockerfile:1
# BoxOffice: build with dev dependencies, run with production ones only, as a non-root user.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds its native module when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci runs the `prepare` script, which skips the web build while web/ is not copied yet.
COPY scripts/build-web.mjs ./scripts/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
# The service and the web app (Vite builds it into dist/web, which the run stage copies with dist).
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS run
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
RUN groupadd --system boxoffice && useradd --system --gid boxoffice --home /app boxoffice \
    && mkdir -p /data && chown boxoffice:boxoffice /data
COPY --from=build --chown=boxoffice:boxoffice /app/node_modules ./node_modules
COPY --from=build --chown=boxoffice:boxoffice /app/dist ./dist
COPY --chown=boxoffice:boxoffice package.json ./
USER boxoffice
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Exec form: node is PID 1's child-free process and receives SIGTERM directly for a graceful shutdown.
CMD ["node", "--max-semi-space-size=64", "dist/src/main.js"]
