/**
 * The V8 flags the exporter runs with: in the `kube-gpu-exporter` command's shebang, in the
 * container image and in the benchmark. A small young generation and a capped old
 * generation keep the resident set flat; the exporter's live heap is a few MB, so its
 * collections run on the thread that allocates (--single-threaded-gc) instead of waking V8's
 * helper threads for parallel scavenges and concurrent marking: fewer wake-ups when idle.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--max-old-space-size=96', '--no-turbofan', '--single-threaded-gc'];
