#!/usr/bin/env node
// Builds the torch engine's bridge (torch_bridge.cc) against a libtorch found on this machine, with the
// C++ compiler and the headers of the npm packages node-addon-api and node-api-headers (nothing downloads).
//
// libtorch is looked for, in order: $LIBTORCH (a libtorch folder: include/, lib/), a Python `torch`
// ($REFERENCE_VENV/bin/python, then python3), Debian's libtorch-dev. The result is
// build/fedcxr_torch.node beside build/torch-build.json (which libtorch, which source hash, which Node ABI).
//
//   node packages/core/native/build.mjs [--optional] [--force] [--json] [--quiet]
//
// --optional: never fail (npm ci calls it this way; a machine without libtorch or a compiler just has no
// torch backend). Without it, a missing libtorch or a failed compile exits 1 with the reason.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const args = new Set(process.argv.slice(2));
const optional = args.has('--optional');
const quiet = args.has('--quiet');
const source = path.join(here, 'torch_bridge.cc');
const outDir = path.join(here, 'build');
const addonPath = path.join(outDir, 'fedcxr_torch.node');
const manifestPath = path.join(outDir, 'torch-build.json');

function log(line) {
  if (!quiet && !args.has('--json')) process.stderr.write(`torch engine: ${line}\n`);
}

function finish(result) {
  if (args.has('--json')) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (!result.built) {
    log(`${result.reason}${optional ? ' (optional: the torch backend stays unavailable)' : ''}`);
    process.exit(optional ? 0 : 1);
  }
  process.exit(0);
}

/** A libtorch folder: headers, the API headers, the shared libraries, and the C++ ABI it was built with. */
function libtorchFrom(root, origin) {
  const include = path.join(root, 'include');
  const lib = path.join(root, 'lib');
  if (!existsSync(path.join(include, 'ATen', 'ATen.h'))) return null;
  if (!existsSync(path.join(lib, 'libtorch_cpu.so')) && !existsSync(path.join(lib, 'libtorch.so'))) return null;
  return { root, include, lib, origin };
}

function pythonTorch() {
  const candidates = [];
  if (process.env.REFERENCE_VENV) candidates.push(path.join(process.env.REFERENCE_VENV, 'bin', 'python'));
  candidates.push('python3', 'python');
  const script =
    'import json, os, torch; print(json.dumps({"root": os.path.dirname(torch.__file__), "version": torch.__version__, "abi": int(torch._C._GLIBCXX_USE_CXX11_ABI)}))';
  for (const python of candidates) {
    const run = spawnSync(python, ['-c', script], { encoding: 'utf8', timeout: 120_000 });
    if (run.status !== 0) continue;
    try {
      const found = JSON.parse(run.stdout.trim().split('\n').pop());
      const lt = libtorchFrom(found.root, `Python torch ${found.version} (${python})`);
      if (lt) return { ...lt, version: found.version, abi: found.abi };
    } catch {}
  }
  return null;
}

function findLibtorch() {
  const tried = [];
  if (process.env.LIBTORCH) {
    const lt = libtorchFrom(process.env.LIBTORCH, `LIBTORCH=${process.env.LIBTORCH}`);
    if (lt) return { libtorch: lt, tried };
    tried.push(`LIBTORCH=${process.env.LIBTORCH} has no include/ATen/ATen.h and lib/libtorch*.so`);
  } else tried.push('LIBTORCH is not set');
  const py = pythonTorch();
  if (py) return { libtorch: py, tried };
  tried.push('no Python with `import torch` ($REFERENCE_VENV/bin/python, python3, python)');
  const debian = libtorchFrom('/usr', "Debian's libtorch-dev");
  if (debian && existsSync('/usr/lib/x86_64-linux-gnu/libtorch.so')) {
    return { libtorch: { ...debian, lib: '/usr/lib/x86_64-linux-gnu' }, tried };
  }
  tried.push('no Debian libtorch-dev (/usr/include/ATen/ATen.h)');
  return { libtorch: null, tried };
}

function versionOf(lt) {
  if (lt.version) return lt.version;
  const header = path.join(lt.include, 'torch', 'version.h');
  if (existsSync(header)) {
    const match = /TORCH_VERSION\s+"([^"]+)"/.exec(readFileSync(header, 'utf8'));
    if (match) return match[1];
  }
  return 'unknown';
}

function compilerOk(cxx) {
  return spawnSync(cxx, ['--version'], { encoding: 'utf8' }).status === 0;
}

const { libtorch, tried } = findLibtorch();
if (!libtorch) finish({ built: false, reason: `no libtorch found: ${tried.join('; ')}` });
const cxx = process.env.CXX || 'g++';
if (!compilerOk(cxx)) finish({ built: false, reason: `no C++ compiler (${cxx} --version failed)` });

let napiInclude;
let addonInclude;
try {
  napiInclude = path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'include');
  addonInclude = path.dirname(require.resolve('node-addon-api/package.json'));
} catch (error) {
  finish({ built: false, reason: `node-addon-api / node-api-headers are not installed: ${error.message}` });
}

const version = versionOf(libtorch);
const sourceHash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
const fingerprint = { sourceHash, libtorch: libtorch.root, version, napi: 8 };
if (!args.has('--force') && existsSync(addonPath) && existsSync(manifestPath)) {
  try {
    const previous = JSON.parse(readFileSync(manifestPath, 'utf8'));
    if (previous.sourceHash === sourceHash && previous.libtorch === libtorch.root && previous.version === version) {
      log(`up to date (${previous.origin})`);
      finish({ built: true, upToDate: true, ...previous });
    }
  } catch {}
}

const libs = readdirSync(libtorch.lib);
const has = (name) => libs.includes(`lib${name}.so`);
// --no-as-needed keeps libtorch_cuda linked although no symbol of it is named: its static initializers
// register the CUDA kernels with the dispatcher.
const linkLibs = ['c10', 'torch_cpu', 'torch', 'c10_cuda', 'torch_cuda'].filter(has).map((name) => `-l${name}`);
const abi = libtorch.abi ?? 1;
const compileArgs = [
  '-O2',
  '-std=c++20',
  '-fPIC',
  '-shared',
  '-fvisibility=hidden',
  `-D_GLIBCXX_USE_CXX11_ABI=${abi}`,
  '-DNAPI_VERSION=8',
  `-DFEDCXR_LIBTORCH_VERSION="${version}"`,
  '-DNAPI_CPP_EXCEPTIONS',
  '-DNODE_ADDON_API_DISABLE_DEPRECATED',
  '-Wno-deprecated-declarations',
  `-I${napiInclude}`,
  `-I${addonInclude}`,
  `-I${libtorch.include}`,
  `-I${path.join(libtorch.include, 'torch', 'csrc', 'api', 'include')}`,
  source,
  '-o',
  `${addonPath}.tmp`,
  `-L${libtorch.lib}`,
  '-Wl,--no-as-needed',
  ...linkLibs,
  '-Wl,--as-needed',
  `-Wl,-rpath,${libtorch.lib}`,
];
mkdirSync(outDir, { recursive: true });
log(`compiling against ${libtorch.origin} (${version}); this takes a minute or two`);
const started = Date.now();
const compile = spawnSync(cxx, compileArgs, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
if (compile.status !== 0) {
  const errors = `${compile.stderr}`
    .split('\n')
    .filter((l) => /error/.test(l))
    .slice(0, 5)
    .join('\n');
  finish({ built: false, reason: `${cxx} failed (exit ${compile.status}):\n${errors || compile.stderr.slice(-2000)}` });
}
renameSync(`${addonPath}.tmp`, addonPath);
const manifest = {
  ...fingerprint,
  origin: libtorch.origin,
  lib: libtorch.lib,
  cxx: execFileSync(cxx, ['--version'], { encoding: 'utf8' }).split('\n')[0],
  seconds: Math.round((Date.now() - started) / 100) / 10,
  builtAt: new Date().toISOString(),
};
writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
log(`built ${path.relative(process.cwd(), addonPath)} in ${manifest.seconds} s`);
finish({ built: true, ...manifest });
