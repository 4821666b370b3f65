import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  // Static imports and re-exports (`import type` included), and dynamic `import('…')`.
  return [...text.matchAll(/(?:(?:import|export)[^'"]*from\s+|import\(\s*)'([^']+)'/g)].map((m) => m[1]!);
}

/** `file → target` for every relative import under src/`layer` that lands in one of `forbidden`. */
function importsInto(layer: string, forbidden: string[]): string[] {
  return sourcesUnder(path.join(SRC, layer)).flatMap((file) =>
    importsOf(file)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => path.resolve(path.dirname(file), spec))
      .filter((target) => forbidden.some((dir) => target.startsWith(path.join(SRC, dir) + path.sep)))
      .map((target) => `${path.relative(SRC, file)} → ${path.relative(SRC, target)}`),
  );
}

describe('layering: dependencies point one way (http → domain → actors/persistence)', () => {
  for (const layer of ['domain', 'payments', 'actors', 'persistence', 'tickets', 'jobs']) {
    it(`nothing under src/${layer} imports the HTTP layer`, () => {
      expect(importsInto(layer, ['http'])).toEqual([]);
    });
  }
  for (const layer of ['actors', 'persistence']) {
    it(`nothing under src/${layer} imports the domain`, () => {
      expect(importsInto(layer, ['domain'])).toEqual([]);
    });
  }
});
