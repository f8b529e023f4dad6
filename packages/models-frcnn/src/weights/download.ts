/**
 * The official torchvision checkpoints (download.pytorch.org) by name. The file name carries the first
 * 8 hex digits of the file's SHA-256 (torchvision's check_hash convention), verified after download.
 * Offline, the error says so and tells how to import a file obtained elsewhere.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FedcxrError, writeFileAtomic } from '@fedcxr/core';

export interface OfficialWeights {
  url: string;
  /** --arch to give `cxr weights import` for this file. */
  arch: string;
  description: string;
}

export const OFFICIAL_WEIGHTS: Record<string, OfficialWeights> = {
  fasterrcnn_resnet50_fpn_coco: {
    url: 'https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth',
    arch: 'resnet50_fpn',
    description: 'Faster R-CNN ResNet-50-FPN trained on COCO (the seed experiment’s starting point)',
  },
  resnet18: {
    url: 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
    arch: 'resnet18_fpn',
    description: 'ResNet-18 ImageNet (IMAGENET1K_V1)',
  },
  resnet50: {
    url: 'https://download.pytorch.org/models/resnet50-0676ba61.pth',
    arch: 'resnet50_fpn',
    description: 'ResNet-50 ImageNet (IMAGENET1K_V1)',
  },
  resnet101: {
    url: 'https://download.pytorch.org/models/resnet101-63fe2227.pth',
    arch: 'resnet101_fpn',
    description: 'ResNet-101 ImageNet (IMAGENET1K_V1)',
  },
  swin_t: {
    url: 'https://download.pytorch.org/models/swin_t-704ceda3.pth',
    arch: 'swin_t_fpn',
    description: 'Swin-T ImageNet (IMAGENET1K_V1)',
  },
};

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
  const entry = OFFICIAL_WEIGHTS[name];
  if (!entry) {
    throw new FedcxrError('usage', `unknown weights "${name}"; known: ${Object.keys(OFFICIAL_WEIGHTS).join(', ')}`);
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
