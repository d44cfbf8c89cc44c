import { Worker } from 'node:worker_threads';

/**
 * Starts a worker module that sits beside `fromUrl`: the compiled JavaScript in production,
 * the TypeScript source through tsx's loader when running under tsx or vitest.
 */
export function startModuleWorker(fromUrl: string, name: string, workerData: unknown): Worker {
  if (!fromUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, fromUrl), { workerData });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, fromUrl).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
