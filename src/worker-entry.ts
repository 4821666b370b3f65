/**
 * @module worker-entry
 * How to start a worker thread whose module sits next to the caller's: the compiled `.js` in
 * production; from source (tsx, vitest) a small eval'd bootstrap that registers tsx's loader in the new
 * thread before importing the `.ts` module (`--import tsx` in a worker's execArgv does not work under
 * vitest, see docs/NOTES.md).
 *
 * @example
 * const { filename, isEval } = workerEntry(import.meta.url, './shard-worker');
 * new Worker(filename, { eval: isEval, workerData });
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** `callerUrl`: the caller's `import.meta.url`; `relativeModule`: the worker module, without extension. */
export function workerEntry(
  callerUrl: string,
  relativeModule: string,
): { filename: string | URL; isEval: boolean } {
  if (!callerUrl.endsWith('.ts'))
    return { filename: new URL(`${relativeModule}.js`, callerUrl), isEval: false };
  const tsxDir = path.dirname(createRequire(callerUrl).resolve('tsx/package.json'));
  const tsxApi = pathToFileURL(path.join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const entry = new URL(`${relativeModule}.ts`, callerUrl).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return { filename: code, isEval: true };
}
