/**
 * The official torchvision checkpoints (download.pytorch.org) by name: the known weights of the registered
 * detectors and backbones (their registry entries carry them, see known.ts). The file name carries the first
 * 8 hex digits of the file's SHA-256 (torchvision's check_hash convention), verified after download.
 * Offline, the error says so and tells how to import a file obtained elsewhere.
 */
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { backbones, detectors, FedcxrError, type PretrainedWeights, writeFileAtomic } from '@fedcxr/core';
import '../backbones/index.js';
import { registerFasterRcnn } from '../detector/faster-rcnn.js';

/** Known weights with the registry entry that carries them. */
export interface OfficialWeights extends PretrainedWeights {
  registry: 'detector' | 'backbone';
  /** The entry's name (faster_rcnn, resnet50_fpn, …). */
  entry: string;
}

/**
 * Every known weights file of the registered detectors and backbones, by name: detectors' first, then in
 * registration order (a package that registers an entry with weights adds to it).
 */
export function officialWeights(): Record<string, OfficialWeights> {
  registerFasterRcnn();
  const out: Record<string, OfficialWeights> = {};
  for (const [registry, entries] of [
    ['detector', detectors.all()],
    ['backbone', backbones.all()],
  ] as const) {
    for (const entry of entries) {
      for (const [name, weights] of Object.entries(entry.weights)) {
        out[name] ??= { ...weights, registry, entry: entry.name };
      }
    }
  }
  return out;
}

/** The known weights a checkpoint file is (by its published file name), if any. */
export function weightsForFile(file: string): OfficialWeights | undefined {
  const name = basename(file);
  return Object.values(officialWeights()).find((w) => w.url.slice(w.url.lastIndexOf('/') + 1) === name);
}

export interface DownloadOptions {
  /** Folder for the file (created if needed). */
  dir: string;
  /** Replaces https://download.pytorch.org/models (mirrors, tests). */
  baseUrl?: string;
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

export interface DownloadResult {
  name: string;
  file: string;
  url: string;
  bytes: number;
  sha256: string;
  arch: string;
}

export async function downloadOfficialWeights(name: string, options: DownloadOptions): Promise<DownloadResult> {
  const known = officialWeights();
  const entry = known[name];
  if (!entry) {
    throw new FedcxrError('usage', `unknown weights "${name}"; known: ${Object.keys(known).join(', ')}`);
  }
  const fileName = entry.url.slice(entry.url.lastIndexOf('/') + 1);
  const url = options.baseUrl ? `${options.baseUrl.replace(/\/$/, '')}/${fileName}` : entry.url;
  const target = join(options.dir, fileName);
  const fetchImpl = options.fetchImpl ?? fetch;
  let response: Response;
  try {
    response = await fetchImpl(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) });
  } catch (error) {
    const reason = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
    throw new FedcxrError(
      'offline',
      `cannot download ${url}: no connection (${reason}). Fetch it on a machine with internet access, then run: cxr weights import ${fileName} --arch ${entry.arch} --out <model-dir>`,
    );
  }
  if (!response.ok) {
    throw new FedcxrError('download_failed', `${url} answered HTTP ${response.status} ${response.statusText}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const expectedPrefix = /-([0-9a-f]{8,})\.pth$/.exec(fileName)?.[1];
  if (expectedPrefix && !sha256.startsWith(expectedPrefix)) {
    throw new FedcxrError(
      'download_corrupt',
      `downloaded ${bytes.length} bytes with SHA-256 ${sha256.slice(0, 12)}…, but the file name promises ${expectedPrefix}…; not saved`,
      { file: target },
    );
  }
  await writeFileAtomic(target, bytes);
  return { name, file: target, url, bytes: bytes.length, sha256, arch: entry.arch };
}
