import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { describe, expect, it } from 'vitest';
import { COMPREHENSIVE_SR_SOP_CLASS, writeDetectionSr } from './sr.js';

const source = {
  studyInstanceUid: '1.2.3.4',
  seriesInstanceUid: '1.2.3.4.5',
  sopInstanceUid: '1.2.3.4.5.6',
  sopClassUid: '1.2.840.10008.5.1.4.1.1.1',
  patientId: 'P001',
};
const findings = [
  { label: 'cardiac_hypertrophy', score: 0.91, box: [10, 20, 110, 220] as [number, number, number, number] },
  { label: 'scoliosis', score: 0.42, box: [5.5, 6.25, 50, 60] as [number, number, number, number] },
];

describe('writeDetectionSr', () => {
  const bytes = writeDetectionSr(source, findings, { now: new Date('2026-11-26T10:00:00Z') });

  it('is a DICOM file with a preamble, the SR SOP class and the source study', () => {
    expect(String.fromCharCode(...bytes.slice(128, 132))).toBe('DICM');
    const ds = dicomParser.parseDicom(bytes);
    expect(ds.string('x00080016')).toBe(COMPREHENSIVE_SR_SOP_CLASS);
    expect(ds.string('x0020000d')).toBe(source.studyInstanceUid);
    expect(ds.string('x00100020')).toBe('P001');
    expect(ds.string('x00080060')).toBe('SR');
    const groups = ds.elements.x0040a730.items?.[4].dataSet?.elements.x0040a730.items ?? [];
    expect(groups).toHaveLength(2);
  });

  it('is read by pydicom with every box, class, score and image reference', (ctx) => {
    const venv = process.env.REFERENCE_VENV ?? join(tmpdir(), 'fedcxr-reference-venv');
    const python = join(venv, 'bin', 'python');
    if (!existsSync(python))
      ctx.skip(`no Python reference environment at ${venv} (run ../shared/tools/python-reference-env.sh)`);
    const file = join(mkdtempSync(join(tmpdir(), 'sr-')), 'sr.dcm');
    writeFileSync(file, bytes);
    const script = `
import json, sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
out = []
for g in ds.ContentSequence[4].ContentSequence:
    item = {}
    for c in g.ContentSequence:
        if c.ValueType == 'CODE': item['label'] = c.ConceptCodeSequence[0].CodeMeaning
        if c.ValueType == 'NUM': item['score'] = float(c.MeasuredValueSequence[0].NumericValue)
        if c.ValueType == 'SCOORD':
            item['points'] = [float(v) for v in c.GraphicData]
            item['ref'] = c.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    out.append(item)
print(json.dumps({'sop': ds.SOPClassUID, 'template': ds.ContentTemplateSequence[0].TemplateIdentifier, 'groups': out}))
`;
    const result = JSON.parse(execFileSync(python, ['-c', script, file], { encoding: 'utf8' }));
    expect(result.sop).toBe(COMPREHENSIVE_SR_SOP_CLASS);
    expect(result.template).toBe('1500');
    expect(result.groups).toEqual([
      {
        label: 'cardiac_hypertrophy',
        score: 0.91,
        points: [10, 20, 110, 20, 110, 220, 10, 220, 10, 20],
        ref: '1.2.3.4.5.6',
      },
      {
        label: 'scoliosis',
        score: 0.42,
        points: [5.5, 6.25, 50, 6.25, 50, 60, 5.5, 60, 5.5, 6.25],
        ref: '1.2.3.4.5.6',
      },
    ]);
  });
});
