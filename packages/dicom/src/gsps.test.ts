import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { describe, expect, it } from 'vitest';
import { GSPS_SOP_CLASS, writeDetectionGsps } from './gsps.js';

const image = {
  studyInstanceUid: '1.2.3.1',
  seriesInstanceUid: '1.2.3.2',
  sopInstanceUid: '1.2.3.3',
  sopClassUid: '1.2.840.10008.5.1.4.1.1.1',
  patientId: 'P001',
  patientName: 'Doe^Jane',
  columns: 440,
  rows: 512,
  photometricInterpretation: 'MONOCHROME1',
  windowCenter: 512,
  windowWidth: 1024,
  rescaleSlope: 1,
  rescaleIntercept: 0,
};
const findings = [
  { label: 'nodule', score: 0.91, box: [10, 20, 110, 220] as [number, number, number, number] },
  { label: 'effusion', score: 0.42, box: [5.5, 6.25, 50, 60] as [number, number, number, number] },
];

function hasTool(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('writeDetectionGsps', () => {
  const bytes = writeDetectionGsps(image, findings, { algorithmName: 'fedcxr test' });

  it('is a GSPS in the study, referencing the image, one polyline and one text per detection', () => {
    const ds = dicomParser.parseDicom(bytes);
    expect(ds.string('x00080016')).toBe(GSPS_SOP_CLASS);
    expect(ds.string('x00080060')).toBe('PR');
    expect(ds.string('x0020000d')).toBe(image.studyInstanceUid);
    expect(ds.string('x20500020')).toBe('INVERSE'); // MONOCHROME1
    const series = ds.elements.x00081115.items?.[0].dataSet;
    expect(series?.string('x0020000e')).toBe(image.seriesInstanceUid);
    expect(series?.elements.x00081140.items?.[0].dataSet?.string('x00081155')).toBe(image.sopInstanceUid);
    const annotation = ds.elements.x00700001.items?.[0].dataSet;
    const graphics = annotation?.elements.x00700009.items ?? [];
    expect(graphics).toHaveLength(2);
    const first = graphics[0].dataSet!;
    expect(first.string('x00700023')).toBe('POLYLINE');
    const points = Array.from({ length: 10 }, (_, i) => first.float('x00700022', i));
    expect(points).toEqual([10, 20, 110, 20, 110, 220, 10, 220, 10, 20]);
    const texts = annotation?.elements.x00700008.items ?? [];
    expect(texts.map((t) => t.dataSet?.string('x00700006'))).toEqual(['nodule 0.91', 'effusion 0.42']);
    const voi = ds.elements.x00283110.items?.[0].dataSet;
    expect(voi?.string('x00281050')).toBe('512');
  });

  it('passes DCMTK dcmpschk (the presentation state checker)', (ctx) => {
    if (!hasTool('dcmpschk')) ctx.skip('no dcmpschk (apt-get install dcmtk)');
    const file = join(mkdtempSync(join(tmpdir(), 'gsps-')), 'pr.dcm');
    writeFileSync(file, bytes);
    // dcmpschk always exits 0; it ends its report (on stderr) with "Test passed." or "Test failed - ...".
    const report = spawnSync('dcmpschk', [file], { encoding: 'utf8' });
    expect(`${report.stdout}${report.stderr}`).toMatch(/Test passed\./);
  });

  it('is read by pydicom: graphic objects, texts and the referenced image', (ctx) => {
    const venv = process.env.REFERENCE_VENV ?? join(tmpdir(), 'fedcxr-reference-venv');
    const python = join(venv, 'bin', 'python');
    if (!existsSync(python)) ctx.skip(`no Python reference environment at ${venv}`);
    const file = join(mkdtempSync(join(tmpdir(), 'gsps-')), 'pr.dcm');
    writeFileSync(file, bytes);
    const script = `
import json, sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
a = ds.GraphicAnnotationSequence[0]
print(json.dumps({
  'layer': a.GraphicLayer,
  'ref': a.ReferencedImageSequence[0].ReferencedSOPInstanceUID,
  'graphics': [[float(v) for v in g.GraphicData] for g in a.GraphicObjectSequence],
  'texts': [t.UnformattedTextValue for t in a.TextObjectSequence],
  'area': [int(v) for v in ds.DisplayedAreaSelectionSequence[0].DisplayedAreaBottomRightHandCorner],
}))
`;
    const result = JSON.parse(execFileSync(python, ['-c', script, file], { encoding: 'utf8' }));
    expect(result).toEqual({
      layer: 'FEDCXR',
      ref: image.sopInstanceUid,
      graphics: [
        [10, 20, 110, 20, 110, 220, 10, 220, 10, 20],
        [5.5, 6.25, 50, 6.25, 50, 60, 5.5, 60, 5.5, 6.25],
      ],
      texts: ['nodule 0.91', 'effusion 0.42'],
      area: [440, 512],
    });
  });
});
