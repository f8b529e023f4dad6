import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backbones, TORCHVISION_PREPROCESSING } from '@fedcxr/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadOfficialWeights, officialWeights, weightsForFile } from './download.js';

let dir = '';
let server: Server;
let baseUrl = '';
const body = new TextEncoder().encode('not really a checkpoint');
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'download-'));
  server = createServer((request, response) => {
    if (request.url?.endsWith('.pth')) {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      response.end(body);
    } else {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('cxr weights download (library)', () => {
  it('lists the official torchvision files: the known weights of the registry entries', () => {
    const known = officialWeights();
    expect(known.fasterrcnn_resnet50_fpn_coco.url).toBe(
      'https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth',
    );
    expect(Object.keys(known)).toEqual(['fasterrcnn_resnet50_fpn_coco', 'resnet18', 'resnet50', 'resnet101', 'swin_t']);
    expect(known.fasterrcnn_resnet50_fpn_coco).toMatchObject({
      registry: 'detector',
      entry: 'faster_rcnn',
      arch: 'resnet50_fpn',
      layout: 'detector',
      preprocessing: TORCHVISION_PREPROCESSING,
    });
    expect(known.fasterrcnn_resnet50_fpn_coco.classes).toHaveLength(91);
    expect(known.resnet101).toMatchObject({ registry: 'backbone', entry: 'resnet101_fpn', layout: 'imagenet' });
    expect(weightsForFile('/tmp/x/swin_t-704ceda3.pth')?.entry).toBe('swin_t_fpn');
    expect(weightsForFile('/tmp/x/swin_t.pth')).toBeUndefined();
  });

  it('says clearly when offline, and how to import a file fetched elsewhere', async () => {
    // A closed port: the connection is refused exactly as with no network.
    await expect(
      downloadOfficialWeights('resnet50', { dir, baseUrl: 'http://127.0.0.1:9/models', timeoutMs: 5000 }),
    ).rejects.toThrow(
      /cannot download .*resnet50-0676ba61.pth: no connection.*cxr weights import resnet50-0676ba61.pth --arch resnet50_fpn/,
    );
  });

  it('refuses a file whose SHA-256 does not match the name, and saves one that does', async () => {
    await expect(downloadOfficialWeights('swin_t', { dir, baseUrl })).rejects.toThrow(/promises 704ceda3/);
    // An entry registered with weights whose file name promises the served bytes' hash: verify the saved bytes.
    const sha = createHash('sha256').update(body).digest('hex');
    backbones.register(
      'test_only_fpn',
      () => {
        throw new Error('not built in this test');
      },
      {
        weights: {
          test_only: {
            url: `https://example.invalid/models/test-${sha.slice(0, 8)}.pth`,
            arch: 'resnet18_fpn',
            layout: 'imagenet',
            description: '',
            preprocessing: TORCHVISION_PREPROCESSING,
          },
        },
      },
    );
    const result = await downloadOfficialWeights('test_only', { dir, baseUrl });
    expect(result.sha256).toBe(sha);
    expect(new Uint8Array(await readFile(result.file))).toEqual(body);
    await expect(downloadOfficialWeights('vgg', { dir })).rejects.toThrow(/unknown weights "vgg"/);
  });
});
