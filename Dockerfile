# syntax=docker/dockerfile:1
#
# kube-gpu-exporter images. Two targets:
#
#   product (the default: the last stage): the exporter and its production dependencies, no
#   simulation in it. Deploy this one.
#     docker build -t kube-gpu-exporter:0.1.0 .
#     docker run --rm kube-gpu-exporter:0.1.0 --help
#
#   demo: the product plus the simulated node (the simulated libnvidia-ml.so.1 of every
#   scenario, the scenarios, a fake kubelet with pods); its ENTRYPOINT is the demo. No GPU
#   needed; never deploy it (it reports made-up GPUs).
#     docker build --target demo -t kube-gpu-exporter:demo .
#     docker run --rm -p 9400:9400 kube-gpu-exporter:demo     # 8x H100 with pods: http://localhost:9400/
#     docker run --rm -p 9400:9400 kube-gpu-exporter:demo --scenario a100-mig
#
# On a GPU node the NVIDIA container runtime (GPU Operator or nvidia-container-toolkit) injects
# libnvidia-ml.so.1 and the device nodes (deploy/base/daemonset.yaml sets NVIDIA_VISIBLE_DEVICES=all
# and NVIDIA_DRIVER_CAPABILITIES=utility); the product image carries no NVIDIA library of its own.
#
# test/dockerfile.test.ts lints this file and replays its COPY and RUN steps into temporary
# directories, then runs the product's ENTRYPOINT there (--help, --version), checks that the
# product holds no simulation, and runs the demo target's ENTRYPOINT: a RUN command it does not
# know makes it fail, so teach it any new one.

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
COPY native/sim/ native/sim/
COPY scenarios/ scenarios/
COPY src/ src/
RUN npm run build:sim && npm run build
# Every scenario's library variant (old-driver omits symbols), so `--scenario NAME` in the
# demo needs no compiler in its image.
RUN node --input-type=module -e "import { readdirSync } from 'node:fs'; import { simulatedNode } from './dist/src/sim/harness.js'; for (const f of readdirSync('scenarios')) if (f.endsWith('.sim')) simulatedNode(f.slice(0, -4));"
# The simulation's compiled code (src/sim and src/demo.ts) moves out of dist/src, so the
# product copies dist/src whole and the demo adds demo/dist/src over it.
RUN mkdir -p demo/dist/src && mv dist/src/sim dist/src/demo.js dist/src/demo.js.map demo/dist/src/

# ---------------------------------------------------------------------------------------
# deps: production dependencies only.
# ---------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# ---------------------------------------------------------------------------------------
# exporter: the product's contents (the product target below is this stage as it is; the
# demo target adds the simulation to it).
# ---------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS exporter
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
ENTRYPOINT ["node", "--max-semi-space-size=1", "--max-old-space-size=96", "--no-turbofan", "--single-threaded-gc", "/app/dist/src/main.js"]

# ---------------------------------------------------------------------------------------
# demo (docker build --target demo): the exporter on a simulated node with its pods.
# ---------------------------------------------------------------------------------------
FROM exporter AS demo
LABEL org.opencontainers.image.title="kube-gpu-exporter-demo" \
      org.opencontainers.image.description="kube-gpu-exporter on a simulated NVIDIA GPU node with pods (a demo: no GPU needed, not for deployment)"
# The simulation's compiled code beside the exporter's; the scenarios and package.json beside
# them (src/sim finds the root by package.json beside scenarios/); native/sim with every
# scenario's prebuilt library and its C source, and build-sim.mjs, which finds each library
# newer than its source, so no compiler is needed.
COPY --from=build /src/demo/dist/src ./dist/src/
COPY --from=build /src/scenarios ./scenarios/
COPY --from=build /src/scripts/build-sim.mjs ./scripts/
COPY --from=build /src/native/sim ./native/sim/
# The exporter's V8 flags; arguments are the demo's (--scenario NAME) and the exporter's flags.
ENTRYPOINT ["node", "--max-semi-space-size=1", "--max-old-space-size=96", "--no-turbofan", "--single-threaded-gc", "/app/dist/src/demo.js"]

# ---------------------------------------------------------------------------------------
# product (the default target, so it stays the last stage): the exporter stage, no simulation.
# ---------------------------------------------------------------------------------------
FROM exporter AS product
