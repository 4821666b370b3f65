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
  return [...text.matchAll(/(?:import|export)[^'"]*from\s+'([^']+)'/g)].map((m) => m[1]!);
}

describe('layering: dependencies point one way (http → domain → actors/persistence)', () => {
  for (const layer of ['domain', 'payments', 'actors', 'persistence', 'tickets', 'jobs']) {
    it(`nothing under src/${layer} imports the HTTP layer`, () => {
      const offenders = sourcesUnder(path.join(SRC, layer)).flatMap((file) =>
        importsOf(file)
          .filter((spec) => spec.startsWith('.'))
          .map((spec) => path.resolve(path.dirname(file), spec))
          .filter((target) => target.startsWith(path.join(SRC, 'http') + path.sep))
          .map((target) => `${path.relative(SRC, file)} → ${path.relative(SRC, target)}`),
      );
      expect(offenders).toEqual([]);
    });
  }
});
