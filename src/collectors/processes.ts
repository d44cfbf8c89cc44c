import type { ProcessInfo, ProcessUtilizationSample } from '../native/nvml-binding.js';
import type { ProcessSample, ProcessUtilSample } from '../sample.js';
import type { Collector, GpuTarget, ValueReader } from './collector.js';

/** GpuTarget.state key: the newest process utilization timestamp (µs) seen on this GPU. */
export const LAST_SEEN_KEY = 'processes.lastSeenTimestampUs';

export function toProcessSample(p: ProcessInfo): ProcessSample {
  return {
    pid: p.pid,
    ...(p.usedGpuMemory !== undefined ? { usedMemoryBytes: p.usedGpuMemory } : {}),
    ...(p.gpuInstanceId !== undefined ? { gpuInstanceId: p.gpuInstanceId } : {}),
    ...(p.computeInstanceId !== undefined ? { computeInstanceId: p.computeInstanceId } : {}),
  };
}

/** Per pid, the mean of every driver sample given (sorted by pid). */
export function averageProcessUtilization(samples: readonly ProcessUtilizationSample[]): ProcessUtilSample[] {
  const sums = new Map<number, { n: number; sm: number; mem: number; enc: number; dec: number }>();
  for (const s of samples) {
    let acc = sums.get(s.pid);
    if (!acc) sums.set(s.pid, (acc = { n: 0, sm: 0, mem: 0, enc: 0, dec: 0 }));
    acc.n++;
    acc.sm += s.smUtilPercent;
    acc.mem += s.memUtilPercent;
    acc.enc += s.encUtilPercent;
    acc.dec += s.decUtilPercent;
  }
  return [...sums.entries()]
    .sort(([a], [b]) => a - b)
    .map(([pid, a]) => ({
      pid,
      smUtilPercent: a.sm / a.n,
      memUtilPercent: a.mem / a.n,
      encUtilPercent: a.enc / a.n,
      decUtilPercent: a.dec / a.n,
    }));
}

/** MIG mode as the mig collector saw it this tick; asked directly when that collector did not say. */
export function migEnabled(reader: ValueReader, gpu: GpuTarget): boolean {
  const seen = gpu.sample.values.migModeEnabled;
  if (seen !== undefined || gpu.migDevices.length > 0) return seen === 1 || gpu.migDevices.length > 0;
  let enabled = false;
  reader.attempt(() => {
    enabled = reader.nvml.migMode(gpu.device).current === 1;
  });
  return enabled;
}

/**
 * Running compute processes with their GPU memory and, on whole GPUs, their utilization.
 * On MIG-enabled GPUs processes are read per MIG handle (MigSample.processes; needs the mig
 * collector, which runs first) and per-process utilization is not available.
 */
export const processesCollector: Collector = {
  name: 'processes',
  needs: ['mig'],
  defaultEnabled: true,
  description: 'Running compute processes with their GPU memory and SM utilization (feeds per-pod usage)',
  collect(reader, gpu) {
    const { nvml } = reader;
    if (migEnabled(reader, gpu)) {
      for (const mig of gpu.migDevices) {
        reader.attempt(() => {
          mig.sample.processes = nvml.computeProcesses(mig.device).map(toProcessSample);
        });
      }
      return;
    }
    reader.attempt(() => {
      gpu.sample.processes = nvml.computeProcesses(gpu.device).map(toProcessSample);
    });
    reader.attempt(() => {
      const lastSeen = (gpu.state.get(LAST_SEEN_KEY) as number | undefined) ?? 0;
      const samples = nvml.processUtilization(gpu.device, lastSeen);
      if (samples.length > 0) gpu.state.set(LAST_SEEN_KEY, samples.reduce((m, s) => Math.max(m, s.timestampUs), lastSeen));
      // [] = read, and no process ran since the last tick; left undefined when not supported
      gpu.sample.processUtilization = averageProcessUtilization(samples);
    });
  },
};
