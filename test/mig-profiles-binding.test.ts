import { readFileSync } from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmlBinding, type Device, type GpuInstanceProfile } from '../src/native/nvml-binding.js';
import { GPU_INSTANCE_PROFILE_INFO_V2_VERSION, GpuInstanceProfileInfoV2 } from '../src/native/nvml-structs.js';
import { NvmlError } from '../src/native/nvml-return.js';
import { NOT_EXPORTED_TEXT } from '../src/native/nvml-symbols.js';
import { ROOT } from './support/exporter-process.js';
import { fixtureScenario } from './support/fixture-scenario.js';
import { nvmlError } from './support/nvml-error.js';

/**
 * MIG GPU instance profiles (nvmlDeviceGetGpuInstanceProfileInfoV) through the real koffi binding
 * against the simulated library: a copy of scenarios/h100x8.sim (GPU 7 in MIG mode), which some
 * tests change or replace while the library runs.
 */
const scenario = fixtureScenario('h100x8', { dir: 'scenarios' });
const { node, statePath } = scenario;
let nvml: NvmlBinding;

beforeAll(() => {
  process.env.KGE_SIM_STATE = statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  nvml.init();
});
afterAll(() => nvml.shutdown());

const SYMBOL = 'nvmlDeviceGetGpuInstanceProfileInfoV';

/** What `nvidia-smi mig -lgip` lists for an H100 80GB, in profile-index order. */
const H100_80GB: GpuInstanceProfile[] = [
  { profileIndex: 0, id: 19, name: 'MIG 1g.10gb', sliceCount: 1, instanceCount: 7, multiprocessorCount: 16, memoryMiB: 9984, p2pSupported: false },
  { profileIndex: 1, id: 14, name: 'MIG 2g.20gb', sliceCount: 2, instanceCount: 3, multiprocessorCount: 32, memoryMiB: 20096, p2pSupported: false },
  { profileIndex: 2, id: 9, name: 'MIG 3g.40gb', sliceCount: 3, instanceCount: 2, multiprocessorCount: 60, memoryMiB: 40448, p2pSupported: false },
  { profileIndex: 3, id: 5, name: 'MIG 4g.40gb', sliceCount: 4, instanceCount: 1, multiprocessorCount: 64, memoryMiB: 40448, p2pSupported: false },
  { profileIndex: 4, id: 0, name: 'MIG 7g.80gb', sliceCount: 7, instanceCount: 1, multiprocessorCount: 132, memoryMiB: 81152, p2pSupported: false },
  { profileIndex: 7, id: 20, name: 'MIG 1g.10gb+me', sliceCount: 1, instanceCount: 1, multiprocessorCount: 16, memoryMiB: 9984, p2pSupported: false },
  { profileIndex: 9, id: 15, name: 'MIG 1g.20gb', sliceCount: 1, instanceCount: 4, multiprocessorCount: 26, memoryMiB: 20096, p2pSupported: false },
];

/** A scenario of one GPU per model, each in MIG mode (plus the identity every GPU needs). */
function modelsScenario(models: [name: string, memTotal: string][]): string {
  const lines = [`device_count ${models.length}`, 'gpu.*.mig_mode 1'];
  models.forEach(([name, mem], i) => {
    const hex = i.toString(16).padStart(2, '0');
    lines.push(`gpu.${i}.name ${name}`, `gpu.${i}.mem_total ${mem}`, `gpu.${i}.uuid GPU-${hex}000000-0000-4000-8000-000000000000`, `gpu.${i}.pci_bus_id 00000000:${hex}:00.0`);
  });
  return `${lines.join('\n')}\n`;
}

/** The shipped scenarios and test fixtures that put a GPU in MIG mode. */
function migScenarioFiles(): string[] {
  const files = ['a100-mig', 'h100x8', 'h100x8-mig7', 'h100x8-dra'].map((n) => path.join(ROOT, 'scenarios', `${n}.sim`));
  for (const n of ['events', 'gpm', 'health', 'health-values', 'process-utilization', 'processes']) files.push(path.join(ROOT, 'test', 'fixtures', `${n}.sim`));
  return files;
}

/** The GPU's current MIG mode; 0 where the scenario leaves it out (the driver says NOT_SUPPORTED). */
function migModeOf(d: Device): number {
  try {
    return nvml.migMode(d).current;
  } catch (err) {
    if (err instanceof NvmlError && err.notSupported) return 0;
    throw err;
  }
}

describe('gpuInstanceProfiles on the simulated H100 node', () => {
  it('lists the 7 profiles of an H100 80GB in MIG mode, by profile index, with their fields', () => {
    const gpu7 = nvml.deviceByIndex(7);
    expect(nvml.migMode(gpu7).current).toBe(1);
    expect(nvml.gpuInstanceProfiles(gpu7)).toEqual(H100_80GB);
  });

  it('gives [] for the same GPU with MIG mode off, and for the GPUs without it', async () => {
    expect(nvml.migMode(nvml.deviceByIndex(0)).current).toBe(0);
    expect(nvml.gpuInstanceProfiles(nvml.deviceByIndex(0))).toEqual([]);
    try {
      await scenario.edit(['gpu.7.mig_mode 1', 'gpu.7.mig_mode 0']);
      const gpu7 = nvml.deviceByIndex(7);
      expect(nvml.migMode(gpu7).current).toBe(0);
      expect(nvml.gpuInstanceProfiles(gpu7)).toEqual([]);
    } finally {
      await scenario.restore();
    }
    expect(nvml.gpuInstanceProfiles(nvml.deviceByIndex(7))).toHaveLength(7);
  });

  it('refuses a MIG device handle (INVALID_ARGUMENT), instead of listing nothing', () => {
    const mig = nvml.migDeviceByIndex(nvml.deviceByIndex(7), 0);
    expect(mig).toBeDefined();
    const e = nvmlError(() => nvml.gpuInstanceProfiles(mig));
    expect([e.call, e.code, e.codeName, e.notSupported]).toEqual([SYMBOL, 2, 'INVALID_ARGUMENT', false]);
  });

  it('throws any other error the driver returns, naming the call', async () => {
    try {
      await scenario.append(`\nfault ${SYMBOL} 7 4\n`);
      const e = nvmlError(() => nvml.gpuInstanceProfiles(nvml.deviceByIndex(7)));
      expect([e.call, e.code, e.codeName]).toEqual([SYMBOL, 4, 'NO_PERMISSION']);
    } finally {
      await scenario.restore();
    }
  });

  it('ends the list at INVALID_ARGUMENT past index 0 (an older driver with a shorter profile enum)', () => {
    // the real call for indexes 0-4; from 5 on the driver does not know the index
    const internals = nvml as unknown as { symbols: Record<string, { name: string; fn: (...args: unknown[]) => unknown }> };
    const real = internals.symbols[SYMBOL]!;
    const asked: number[] = [];
    const fn = (d: Device, i: number, b: Buffer): unknown => {
      asked.push(i);
      return i >= 5 ? 2 : real.fn(d, i, b);
    };
    const shorter = Object.create(nvml, { symbols: { value: { ...internals.symbols, [SYMBOL]: { name: SYMBOL, fn } } } }) as NvmlBinding;
    expect(shorter.gpuInstanceProfiles(nvml.deviceByIndex(7))).toEqual(H100_80GB.filter((p) => p.profileIndex < 5));
    expect(asked).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('the simulated driver\'s answers, called directly', () => {
  it('checks the info pointer, its version and the profile index, and fills the struct as nvml.h lays it out', () => {
    const lib = koffi.load(node.libraryPath);
    const byIndex = lib.func('int nvmlDeviceGetHandleByIndex_v2(uint32 index, _Out_ void **dev)');
    const get = lib.func(`int ${SYMBOL}(void *dev, uint32 profile, void *info)`);
    const dev: unknown[] = [null];
    expect(byIndex(7, dev)).toBe(0);
    const buf = Buffer.alloc(152, 0xee);
    expect(get(dev[0], 0, null)).toBe(2);
    buf.writeUInt32LE(0x01000098, 0); // a version 1 struct
    expect(get(dev[0], 0, buf)).toBe(25);
    buf.writeUInt32LE(GPU_INSTANCE_PROFILE_INFO_V2_VERSION, 0);
    expect(GPU_INSTANCE_PROFILE_INFO_V2_VERSION).toBe(0x02000098);
    expect(get(dev[0], 0x12, buf)).toBe(2); // NVML_GPU_INSTANCE_PROFILE_COUNT
    expect(get(dev[0], 0x11, buf)).toBe(3); // a defined index the H100 lacks
    expect(get(dev[0], 4, buf)).toBe(0);
    // 7g.80gb: uint32 fields from offset 0, memorySizeMB at 48, name at 56
    const u32 = (at: number): number => buf.readUInt32LE(at);
    expect([0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40].map(u32)).toEqual([0x02000098, 0, 0, 7, 1, 132, 8, 7, 0, 7, 1]);
    expect(buf.readBigUInt64LE(48)).toBe(81152n);
    expect(buf.toString('latin1', 56, 56 + 'MIG 7g.80gb'.length + 1)).toBe('MIG 7g.80gb\0');
    expect([GpuInstanceProfileInfoV2.size, GpuInstanceProfileInfoV2.offset.memorySizeMB, GpuInstanceProfileInfoV2.offset.name]).toEqual([152, 48, 56]);
  });
});

describe('profile tables by model', () => {
  afterAll(() => scenario.restore());

  it('lists an A30\'s 4 compute slices, and the tables of A100 40GB / 80GB and H200 141GB', async () => {
    await scenario.write(
      modelsScenario([
        ['NVIDIA A30', '24576MiB'],
        ['NVIDIA A100-SXM4-40GB', '40960MiB'],
        ['NVIDIA A100-SXM4-80GB', '81920MiB'],
        ['NVIDIA H200', '143771MiB'],
      ]),
    );
    const names = (i: number): string[] => nvml.gpuInstanceProfiles(nvml.deviceByIndex(i)).map((p) => p.name);
    const a30 = nvml.gpuInstanceProfiles(nvml.deviceByIndex(0));
    expect(a30.map((p) => [p.profileIndex, p.name, p.sliceCount, p.instanceCount])).toEqual([
      [0, 'MIG 1g.6gb', 1, 4],
      [1, 'MIG 2g.12gb', 2, 2],
      [3, 'MIG 4g.24gb', 4, 1],
      [7, 'MIG 1g.6gb+me', 1, 1],
      [8, 'MIG 2g.12gb+me', 2, 1],
    ]);
    expect(Math.max(...a30.map((p) => p.sliceCount))).toBe(4);
    expect(names(1)).toEqual(['MIG 1g.5gb', 'MIG 2g.10gb', 'MIG 3g.20gb', 'MIG 4g.20gb', 'MIG 7g.40gb', 'MIG 1g.5gb+me', 'MIG 1g.10gb']);
    expect(nvml.gpuInstanceProfiles(nvml.deviceByIndex(1)).map((p) => p.multiprocessorCount)).toEqual([14, 28, 42, 56, 98, 14, 14]);
    expect(names(2)).toEqual(H100_80GB.map((p) => p.name));
    expect(names(3)).toEqual(['MIG 1g.18gb', 'MIG 2g.35gb', 'MIG 3g.71gb', 'MIG 4g.71gb', 'MIG 7g.141gb', 'MIG 1g.18gb+me', 'MIG 1g.35gb']);
    for (let i = 0; i < 4; i++) {
      for (const p of nvml.gpuInstanceProfiles(nvml.deviceByIndex(i))) {
        // a profile's memory is at most the GPU's, and the whole-GPU profile's is close to it
        expect(p.memoryMiB, p.name).toBeLessThanOrEqual(nvml.memoryInfo(nvml.deviceByIndex(i)).total / 2 ** 20);
        expect(p.memoryMiB, p.name).toBeGreaterThan(0);
      }
    }
  });

  it('answers NOT_SUPPORTED (so []) for a model it does not know, matching model names as whole words', async () => {
    await scenario.write(
      modelsScenario([
        ['Tesla V100-SXM2-32GB', '32768MiB'],
        ['NVIDIA RTX A3000 Laptop GPU', '24576MiB'],
        ['NVIDIA H100 NVL', '95830MiB'], // another H100, with another table
        ['NVIDIA A30', '24576MiB'],
      ]),
    );
    expect([0, 1, 2, 3].map((i) => nvml.gpuInstanceProfiles(nvml.deviceByIndex(i)).length)).toEqual([0, 0, 0, 5]);
  });

  it('knows the model of every GPU that a shipped scenario or fixture puts in MIG mode, with the profiles of its instances', async () => {
    let migGpus = 0;
    for (const file of migScenarioFiles()) {
      await scenario.write(readFileSync(file, 'utf8'));
      for (let i = 0; i < nvml.deviceCount(); i++) {
        const d = nvml.deviceByIndex(i);
        const where = `${path.basename(file)} GPU ${i} (${nvml.name(d)})`;
        if (migModeOf(d) !== 1) {
          expect(nvml.gpuInstanceProfiles(d), where).toEqual([]);
          continue;
        }
        migGpus++;
        const profiles = nvml.gpuInstanceProfiles(d).map((p) => p.name);
        expect(profiles.length, where).toBeGreaterThan(0);
        for (let slot = 0; slot < nvml.maxMigDeviceCount(d); slot++) {
          const mig = nvml.migDeviceByIndex(d, slot);
          if (mig === undefined) continue;
          // the simulated MIG device's name is "<GPU name> MIG <profile>"
          const profile = nvml.name(mig).split(' MIG ').pop()!;
          expect(profiles, `${where} slot ${slot}`).toContain(`MIG ${profile}`);
        }
      }
    }
    expect(migGpus).toBeGreaterThanOrEqual(migScenarioFiles().length);
  });
});

describe('a driver without nvmlDeviceGetGpuInstanceProfileInfoV', () => {
  const old = fixtureScenario('h100x8', { dir: 'scenarios', omit: [SYMBOL] });
  let oldNvml: NvmlBinding;
  beforeAll(() => {
    process.env.KGE_SIM_STATE = old.statePath;
    oldNvml = new NvmlBinding({ libraryPath: old.node.libraryPath });
    oldNvml.init();
    process.env.KGE_SIM_STATE = statePath;
  });
  afterAll(() => oldNvml.shutdown());

  it('is a separate library that really lacks the symbol', () => {
    expect(old.node.libraryPath).not.toBe(node.libraryPath);
    expect(() => koffi.load(old.node.libraryPath).func(`int ${SYMBOL}(void *dev, uint32 profile, void *info)`)).toThrowError(/Cannot find function/);
  });

  it('lists the symbol as missing once, and reports the call as FUNCTION_NOT_FOUND (not supported), MIG mode or not', () => {
    expect(oldNvml.missingSymbols).toEqual([SYMBOL]);
    for (const i of [7, 0]) {
      const e = nvmlError(() => oldNvml.gpuInstanceProfiles(oldNvml.deviceByIndex(i)));
      expect([e.call, e.code, e.codeName, e.notSupported, e.driverText]).toEqual([SYMBOL, 13, 'FUNCTION_NOT_FOUND', true, NOT_EXPORTED_TEXT]);
    }
    expect(oldNvml.missingSymbols).toEqual([SYMBOL]);
  });
});
