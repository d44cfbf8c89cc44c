# syntax=docker/dockerfile:1
#
# kube-gpu-exporter image.
#
#   docker build -t kube-gpu-exporter:0.1.0 .
#   docker run --rm kube-gpu-exporter:0.1.0 --help
#   # the exporter on a simulated 8x H100 node with pods (no GPU needed): http://localhost:9400/
#   docker run --rm -p 9400:9400 --entrypoint node kube-gpu-exporter:0.1.0 /app/dist/src/demo.js
#
# On a GPU node the NVIDIA container runtime (GPU Operator or nvidia-container-toolkit) injects
# libnvidia-ml.so.1 and the device nodes (deploy/base/daemonset.yaml sets NVIDIA_VISIBLE_DEVICES=all
# and NVIDIA_DRIVER_CAPABILITIES=utility); the image carries no NVIDIA library of its own.
#
# test/dockerfile.test.ts lints this file and replays its COPY and RUN steps into a temporary
# directory, then runs the ENTRYPOINT there (--help, --version and the demo): a RUN command it
# does not know makes it fail, so teach it any new one.

# Node.js major of the build and runtime images (an LTS line; the code runs on Node 20, 22
# and 24). For reproducible builds pin the images by digest (node:24-bookworm-slim@sha256:...).
ARG NODE_VERSION=24

# ---------------------------------------------------------------------------------------
# build: compiles TypeScript to dist/ and the simulated libnvidia-ml.so.1 (for the demo).
# The full node image has gcc.
# ---------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the "prepare" script would build before the sources are copied; koffi
# ships its prebuilt binaries in the package and needs no install script.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY scripts/build-sim.mjs scripts/
COPY native/sim/nvml_sim.c native/sim/
COPY proto/ proto/
COPY scenarios/ scenarios/
COPY src/ src/
RUN npm run build:sim && npm run build
# Every scenario's library variant (old-driver omits symbols), so `--scenario NAME` in the
# demo needs no compiler in the final image.
RUN node --input-type=module -e "import { readdirSync } from 'node:fs'; import { simulatedNode } from './dist/src/sim/harness.js'; for (const f of readdirSync('scenarios')) if (f.endsWith('.sim')) simulatedNode(f.slice(0, -4));"

# ---------------------------------------------------------------------------------------
# deps: production dependencies only.
# ---------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# ---------------------------------------------------------------------------------------
# final image
# ---------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kube-gpu-exporter" \
      org.opencontainers.image.description="Per-node Prometheus exporter for NVIDIA GPUs with per-pod attribution, DCGM-compatible metric names" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/node:${NODE_VERSION}-bookworm-slim"
ENV NODE_ENV=production
# The exporter needs no package manager at run time: remove npm, npx, corepack and yarn
# (fewer files for scanners to flag, nothing to install packages with).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules/
COPY --from=build /src/package.json ./
COPY --from=build /src/dist/src ./dist/src/
COPY --from=build /src/proto ./proto/
# For the demo only (src/sim finds the repository root by package.json beside scenarios/;
# build-sim.mjs checks the library is newer than its source, so no compiler is needed).
COPY --from=build /src/scenarios ./scenarios/
COPY --from=build /src/scripts/build-sim.mjs ./scripts/
COPY --from=build /src/native/sim/nvml_sim.c ./native/sim/
COPY --from=build /src/native/sim/build ./native/sim/build/
# Runs as root (UID 0) on purpose: the kubelet's PodResources socket
# (/var/lib/kubelet/pod-resources/kubelet.sock) is owned by root and only root may write to it,
# which connecting to a unix socket needs; a non-root user cannot map devices to pods. What root gives up in the DaemonSet
# (deploy/base/daemonset.yaml securityContext): every capability is dropped, the root filesystem
# is read-only, privilege escalation is off and seccomp is RuntimeDefault, so this root
# cannot change files outside its read-only mounts or gain capabilities.
USER 0:0
EXPOSE 9400
# The V8 flags of src/node-flags.ts (a test keeps them equal); no CMD: flags come from the
# DaemonSet's args. No HEALTHCHECK: Kubernetes probes /healthz and /readyz.
ENTRYPOINT ["node", "--max-semi-space-size=1", "--max-old-space-size=96", "--no-turbofan", "/app/dist/src/main.js"]
