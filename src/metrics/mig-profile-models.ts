import type { MigProfileSample } from '../sample.js';

/**
 * MIG profiles of the GPU models that have MIG, for GPUs whose MIG mode is off (NVML then lists
 * none). A profile's memory is the figure in its name in decimal gigabytes (1g.10gb: 10^9 x 10
 * bytes), which is a little less than the instance really gets (9.75 GiB on an H100): a
 * recommendation built on it errs on the safe side.
 */
interface ModelTable {
  /** Matches the NVML name of the model. */
  name: RegExp;
  /** Total framebuffer of the model, GiB: the range that tells its memory variants apart. */
  memoryGiB: [number, number];
  /** Profile name: how many fit on one GPU. */
  profiles: Record<string, number>;
}

const H100_80GB = { '1g.10gb': 7, '1g.20gb': 4, '2g.20gb': 3, '3g.40gb': 2, '4g.40gb': 1, '7g.80gb': 1 };

const MODELS: readonly ModelTable[] = [
  { name: /\bH100\b/, memoryGiB: [75, 85], profiles: H100_80GB },
  { name: /\bA100\b/, memoryGiB: [75, 85], profiles: H100_80GB },
  { name: /\bA100\b/, memoryGiB: [35, 45], profiles: { '1g.5gb': 7, '2g.10gb': 3, '3g.20gb': 2, '4g.20gb': 1, '7g.40gb': 1 } },
  { name: /\bH200\b/, memoryGiB: [130, 150], profiles: { '1g.18gb': 7, '1g.35gb': 4, '2g.35gb': 3, '3g.71gb': 2, '4g.71gb': 1, '7g.141gb': 1 } },
  { name: /\bB200\b/, memoryGiB: [165, 190], profiles: { '1g.23gb': 7, '1g.45gb': 4, '2g.45gb': 3, '3g.90gb': 2, '4g.90gb': 1, '7g.180gb': 1 } },
  { name: /\bB300\b/, memoryGiB: [250, 300], profiles: { '1g.34gb': 7, '1g.67gb': 4, '2g.67gb': 3, '3g.135gb': 2, '4g.135gb': 1, '7g.269gb': 1 } },
  { name: /\bA30\b/, memoryGiB: [22, 26], profiles: { '1g.6gb': 4, '2g.12gb': 2, '4g.24gb': 1 } },
];

const PROFILE = /^(\d+)g\.(\d+)gb$/;
const GIB = 1024 ** 3;

function samples(profiles: Record<string, number>): MigProfileSample[] {
  return Object.entries(profiles).map(([profile, instanceCount]) => {
    const [, slices, gb] = PROFILE.exec(profile)!;
    return { profile, sliceCount: Number(slices), instanceCount, memoryBytes: Number(gb) * 1e9 };
  });
}

const TABLES = MODELS.map((m) => ({ ...m, samples: samples(m.profiles) }));

/** The MIG profiles of a GPU model by its NVML name and total memory; undefined for a model without MIG or not in the table. */
export function modelMigProfiles(name: string, memoryTotalBytes: number | undefined): readonly MigProfileSample[] | undefined {
  if (memoryTotalBytes === undefined) return undefined;
  const gib = memoryTotalBytes / GIB;
  return TABLES.find((m) => m.name.test(name) && gib >= m.memoryGiB[0] && gib <= m.memoryGiB[1])?.samples;
}
