/**
 * Test helpers stay out of production code. A testing module is a `testing.ts`, anything under a `testing/`
 * folder or a `*.test-helper.ts`; the `/testing` entries (`@fedcxr/core/testing`, `@fedcxr/models-frcnn/testing`)
 * are testing modules. Two checks over the sources (packages/<name>/src, apps/<name>/src):
 * - no production source (a non-test module that is not a testing module) imports a `/testing` entry or a
 *   testing module of another package;
 * - nothing reachable from a package's production entries (its tsup entries but `/testing`, the modules its
 *   published paths load) is a test file or a testing module, whichever package it belongs to.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Workspace {
  dir: string;
  name: string;
  /** Subpath ('' for the package itself, 'eval' for `@fedcxr/core/eval`) → source file. */
  subpaths: Map<string, string>;
  /** Source files of the tsup entries. */
  entries: string[];
}

const workspaces: Workspace[] = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces as string[]
).map((w) => {
  const dir = join(root, w);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const subpaths = new Map<string, string>();
  for (const [key, target] of Object.entries(manifest.exports as Record<string, string | { import: string }>)) {
    const built = typeof target === 'string' ? target : target.import;
    const match = /^\.\/dist\/(.+)\.js$/.exec(built);
    if (match) subpaths.set(key.replace(/^\.\/?/, ''), join(dir, 'src', `${match[1]}.ts`));
  }
  const tsup = readFileSync(join(dir, 'tsup.config.ts'), 'utf8');
  const list = /entry:\s*\[([^\]]*)\]/.exec(tsup)?.[1] ?? '';
  const entries = [...list.matchAll(/'([^']+)'/g)].map((m) => join(dir, m[1]));
  return { dir, name: manifest.name as string, subpaths, entries };
});

const isTestFile = (file: string) => file.endsWith('.test.ts');
const isTestingModule = (file: string) => {
  const path = relative(root, file).split('/');
  return path.at(-1) === 'testing.ts' || path.slice(0, -1).includes('testing') || file.endsWith('.test-helper.ts');
};
const workspaceOf = (file: string) => workspaces.find((w) => file.startsWith(`${w.dir}/`));

/** The file an import specifier names, when it is one of the repo's sources (null: an external module). */
function resolveImport(from: string, specifier: string): string | null {
  if (specifier.startsWith('.')) {
    const path = resolve(dirname(from), specifier);
    const candidates = [path.replace(/\.js$/, '.ts'), path, `${path}.ts`, join(path, 'index.ts')];
    return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? null;
  }
  const match = /^(@fedcxr\/[^/]+)(?:\/(.+))?$/.exec(specifier);
  if (!match) return null;
  const target = workspaces.find((w) => w.name === match[1])?.subpaths.get(match[2] ?? '');
  return target && existsSync(target) ? target : null;
}

const importsOf = (file: string) =>
  ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);

/** Why a production source's imports break the rule (empty when they do not). */
function violations(file: string, specifiers: string[]): string[] {
  const found: string[] = [];
  const own = workspaceOf(file);
  for (const specifier of specifiers) {
    if (/^@fedcxr\/[^/]+\/testing$/.test(specifier)) {
      found.push(`${relative(root, file)} imports ${specifier}`);
      continue;
    }
    const target = resolveImport(file, specifier);
    if (target && isTestingModule(target) && workspaceOf(target) !== own) {
      found.push(`${relative(root, file)} imports ${relative(root, target)}, a testing module of another package`);
    }
  }
  return found;
}

function sources(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|mjs)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

const allSources = workspaces.flatMap((w) => sources(join(w.dir, 'src')));
const production = allSources.filter((f) => !isTestFile(f) && !isTestingModule(f));

describe('production code never imports test helpers', () => {
  it('finds the sources and the /testing entries it guards', () => {
    expect(production.length).toBeGreaterThan(150);
    for (const [pkg, sub] of [
      ['@fedcxr/core', 'testing'],
      ['@fedcxr/models-frcnn', 'testing'],
    ] as const) {
      const entry = workspaces.find((w) => w.name === pkg)?.subpaths.get(sub);
      expect(entry && existsSync(entry), `${pkg}/${sub}`).toBe(true);
      expect(isTestingModule(entry as string)).toBe(true);
    }
    // The rule itself: a /testing entry or another package's testing module is refused, the package's own
    // production modules are not.
    const cli = join(root, 'packages/cli/src/commands/train.ts');
    expect(violations(cli, ['@fedcxr/core/testing', '../../../core/src/testing/chromium.js'])).toHaveLength(2);
    expect(violations(cli, ['@fedcxr/core', '@fedcxr/core/eval', '../index.js', 'node:fs'])).toEqual([]);
  });

  it('no production source imports a /testing entry or another package testing module', () => {
    expect(production.flatMap((file) => violations(file, importsOf(file)))).toEqual([]);
  });

  it('nothing a production entry loads is a test file or a testing module', () => {
    const entries = workspaces
      .flatMap((w) => [...w.entries, ...w.subpaths.values()])
      .filter((file) => !isTestingModule(file));
    const seen = new Map<string, string>(); // file → the file that imported it
    const queue = entries.map((file) => {
      seen.set(file, '(entry)');
      return file;
    });
    while (queue.length > 0) {
      const file = queue.shift() as string;
      for (const specifier of importsOf(file)) {
        const target = resolveImport(file, specifier);
        if (target && !seen.has(target)) {
          seen.set(target, file);
          queue.push(target);
        }
      }
    }
    expect(seen.size).toBeGreaterThan(150);
    const bad = [...seen]
      .filter(([file]) => isTestFile(file) || isTestingModule(file))
      .map(([file, by]) => `${relative(root, file)} (imported by ${relative(root, by)})`);
    expect(bad).toEqual([]);
  });
});
