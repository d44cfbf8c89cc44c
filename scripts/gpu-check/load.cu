// The GPU load of `npm run gpu-check` when python3 has no torch: an FMA-bound kernel on every
// SM of device 0 (the caller sets CUDA_VISIBLE_DEVICES to the GPU or MIG instance), launched
// back to back, plus 512 MiB of plain allocation so the process's memory is easy to see.
//
//   nvcc -O2 -o gpu-check-load scripts/gpu-check/load.cu && ./gpu-check-load [SECONDS]
//
// Prints one JSON line, {"ready": true, "pid": ..., "kind": "cuda", ...}, once the first kernel
// finished, or {"ready": false, "error": ...} and exits 3. Runs until SIGTERM or SIGINT, until
// its parent goes away, or for SECONDS (default 120) at most. It only computes: no GPU setting
// is touched.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <unistd.h>
#include <cuda_runtime.h>

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int) { stop_requested = 1; }

__global__ void burn(float *out, int iterations) {
  float a = threadIdx.x * 1e-3f, b = blockIdx.x * 1e-3f, c = 1.0f;
  for (int i = 0; i < iterations; i++) {
    c = fmaf(a, c, b);
    a = fmaf(b, a, c);
    b = fmaf(c, b, a);
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = a + b + c;
}

static double now_seconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(const char *what, cudaError_t err) {
  printf("{\"ready\": false, \"error\": \"%s: %s\"}\n", what, cudaGetErrorString(err));
  fflush(stdout);
  return 3;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 120.0;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  pid_t parent = getppid();

  cudaDeviceProp prop;
  cudaError_t err = cudaGetDeviceProperties(&prop, 0);
  if (err != cudaSuccess) return fail("cudaGetDeviceProperties", err);
  const int threads = 256;
  const int blocks = prop.multiProcessorCount * 8;
  float *out = nullptr;
  void *ballast = nullptr;
  const size_t ballast_bytes = 512u << 20;
  if ((err = cudaMalloc(&out, sizeof(float) * blocks * threads)) != cudaSuccess) return fail("cudaMalloc", err);
  if ((err = cudaMalloc(&ballast, ballast_bytes)) != cudaSuccess) return fail("cudaMalloc", err);
  if ((err = cudaMemset(ballast, 0, ballast_bytes)) != cudaSuccess) return fail("cudaMemset", err);
  burn<<<blocks, threads>>>(out, 1 << 18);
  if ((err = cudaDeviceSynchronize()) != cudaSuccess) return fail("kernel", err);
  printf("{\"ready\": true, \"pid\": %d, \"kind\": \"cuda\", \"device\": \"%s\", \"ballast_bytes\": %zu}\n", (int)getpid(), prop.name, ballast_bytes);
  fflush(stdout);

  const double deadline = now_seconds() + seconds;
  while (!stop_requested && now_seconds() < deadline && getppid() == parent) {
    burn<<<blocks, threads>>>(out, 1 << 18);
    if ((err = cudaDeviceSynchronize()) != cudaSuccess) return fail("kernel", err);
  }
  cudaFree(ballast);
  cudaFree(out);
  return 0;
}
