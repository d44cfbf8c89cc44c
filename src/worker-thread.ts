import { Worker, type TransferListItem } from 'node:worker_threads';

/**
 * Starts a worker module that sits beside `fromUrl`: the compiled JavaScript in production,
 * the TypeScript source through tsx's loader when running under tsx or vitest. `transferList`: what
 * workerData hands over rather than copies (a MessagePort).
 */
export function startModuleWorker(fromUrl: string, name: string, workerData: unknown, transferList: readonly TransferListItem[] = []): Worker {
  if (!fromUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, fromUrl), { workerData, transferList: [...transferList] });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, fromUrl).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData, transferList: [...transferList] });
}
