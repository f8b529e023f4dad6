/**
 * `cxr predict --dicomweb` and `cxr dataset import --dicomweb` against a REAL PACS: Debian's Orthanc with its
 * DICOMweb plugin, started here on a loopback port with a temporary configuration and storage (basic
 * authentication on), filled with real RSNA chest radiographs plus objects a study really holds besides
 * images (a PDF document, a secondary capture without pixels) and one image whose JPEG stream is broken.
 * The reports stored back through STOW-RS are retrieved and read with pydicom. Skips, saying why, without
 * Orthanc (`apt-get install orthanc orthanc-dicomweb`), the RSNA data or the reference checkpoint.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DicomwebClient, jsonString, SR_SERIES_DESCRIPTION, DICOM_JSON_TAGS as TAGS } from '@fedcxr/dicom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  referenceCheckpoint,
  SKIP_REASON,
  saveReferenceModelDir,
} from '../../../models-frcnn/src/onnx/reference-checkpoint.js';
import { runCli } from '../testing.js';
import type { ImagePrediction } from './predict.js';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const rsnaDir = join(repoRoot, '../shared/data/rsna-pneumonia/dicom');
const RSNA_FILES = [
  '000fe35a-2649-43d4-b027-e67796d412e0.dcm',
  '0022073f-cec8-42ec-ab5f-bc2314649235.dcm',
  '00293de0-a530-41dc-9621-0b3def01d06d.dcm',
];

function findExecutable(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) if (dir && existsSync(join(dir, name))) return join(dir, name);
  return null;
}
function findPlugin(): string | null {
  for (const dir of ['/usr/share/orthanc/plugins', '/usr/lib/orthanc', '/usr/local/share/orthanc/plugins']) {
    if (!existsSync(dir)) continue;
    const found = readdirSync(dir).find((f) => f.startsWith('libOrthancDicomWeb.so'));
    if (found) return join(dir, found);
  }
  return null;
}

const orthanc = findExecutable('Orthanc');
const plugin = findPlugin();
const hasRsna = RSNA_FILES.every((f) => existsSync(join(rsnaDir, f)));
const skipWhy = !orthanc
  ? 'no Orthanc (apt-get install orthanc orthanc-dicomweb)'
  : !plugin
    ? 'no Orthanc DICOMweb plugin (apt-get install orthanc-dicomweb)'
    : !hasRsna
      ? `no RSNA data at ${rsnaDir}`
      : null;
if (skipWhy) console.warn(`DICOMweb round trip against Orthanc skipped: ${skipWhy}`);

const hasDcmpschk = spawnSync('dcmpschk', ['--version']).status === 0;
const venv = process.env.REFERENCE_VENV ?? join(tmpdir(), 'fedcxr-reference-venv');
const python = join(venv, 'bin', 'python');

const USER = 'fedcxr';
const PASSWORD = 'pacs-secret';
const CREDENTIALS = `${USER}:${PASSWORD}`;

const dcmjs = createRequire(import.meta.url)('dcmjs') as {
  data: { datasetToBuffer(dataset: Record<string, unknown>): Buffer };
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A non-image object of a study (series `<study>.<n>0`, instance `<study>.<n>1`), as DICOM bytes. */
function studyObject(study: string, patientId: string, n: number, attributes: Record<string, unknown>): Uint8Array {
  return new Uint8Array(
    dcmjs.data.datasetToBuffer({
      _meta: { TransferSyntaxUID: { Value: ['1.2.840.10008.1.2.1'] } },
      _vrMap: {},
      SOPInstanceUID: `${study}.${n}1`,
      StudyInstanceUID: study,
      SeriesInstanceUID: `${study}.${n}0`,
      PatientID: patientId,
      PatientName: patientId,
      ...attributes,
    }),
  );
}

/** A study object that is not an image: an encapsulated PDF (a referral letter, say). */
function pdfDocument(study: string, patientId: string): Uint8Array {
  const pdf = Buffer.from('%PDF-1.4\n% fedcxr test document\ntrailer<<>>\n%%EOF\n');
  return studyObject(study, patientId, 90, {
    SOPClassUID: '1.2.840.10008.5.1.4.1.1.104.1',
    Modality: 'DOC',
    SeriesDescription: 'referral letter',
    MIMETypeOfEncapsulatedDocument: 'application/pdf',
    EncapsulatedDocument: [pdf.buffer.slice(pdf.byteOffset, pdf.byteOffset + pdf.byteLength)],
  });
}

/** A Secondary Capture without Pixel Data: an image SOP class, but nothing to decode (found only by reading it). */
function emptyCapture(study: string, patientId: string): Uint8Array {
  return studyObject(study, patientId, 91, { SOPClassUID: '1.2.840.10008.5.1.4.1.1.7', Modality: 'OT' });
}

/** A copy of an RSNA image under a new SOP Instance UID whose JPEG stream has no start-of-image marker. */
function brokenCopy(bytes: Buffer, sopInstanceUid: string): { bytes: Buffer; uid: string } {
  const uid = `${sopInstanceUid.slice(0, -1)}${sopInstanceUid.endsWith('9') ? '8' : '9'}`;
  let copy = Buffer.from(bytes.toString('latin1').split(sopInstanceUid).join(uid), 'latin1');
  const soi = copy.indexOf(Buffer.from([0xff, 0xd8, 0xff]), copy.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00])));
  copy = Buffer.from(copy);
  copy[soi] = 0;
  copy[soi + 1] = 0;
  return { bytes: copy, uid };
}

interface Run {
  source: string;
  studies: number;
  predictions: ImagePrediction[];
  stored: { study: string; instance: string; report: string; report_series: string; presentation_state?: string }[];
  skipped: { study: string; series?: string; instance?: string; reason: string; message: string }[];
  failed: { file: string; study: string; instance?: string; stage: string; error: { code: string; message: string } }[];
}

describe.skipIf(skipWhy !== null)('DICOMweb against a real Orthanc (QIDO-RS, WADO-RS, STOW-RS)', () => {
  let dir = '';
  let base = '';
  let model = '';
  let server: ChildProcess | null = null;
  let log = '';
  const images: { file: string; study: string; series: string; sop: string; patient: string }[] = [];
  let broken = '';
  let admin: DicomwebClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedcxr-orthanc-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}/dicom-web`;
    const config = {
      Name: 'fedcxr-test',
      HttpPort: port,
      DicomPort: await freePort(),
      StorageDirectory: join(dir, 'storage'),
      IndexDirectory: join(dir, 'storage'),
      RemoteAccessAllowed: false,
      AuthenticationEnabled: true,
      RegisteredUsers: { [USER]: PASSWORD },
      Plugins: [plugin],
      DicomWeb: { Enable: true, Root: '/dicom-web/' },
    };
    writeFileSync(join(dir, 'orthanc.json'), JSON.stringify(config, null, 2));
    server = spawn(orthanc!, [join(dir, 'orthanc.json')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    server.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    const rest = `http://127.0.0.1:${port}`;
    const auth = { Authorization: `Basic ${Buffer.from(CREDENTIALS).toString('base64')}` };
    for (let i = 0; ; i++) {
      if (server.exitCode !== null) throw new Error(`Orthanc exited (${server.exitCode}):\n${log}`);
      try {
        if ((await fetch(`${rest}/system`, { headers: auth })).ok) break;
      } catch {}
      if (i > 150) throw new Error(`Orthanc did not start in 30 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const upload = async (bytes: Uint8Array) => {
      const response = await fetch(`${rest}/instances`, { method: 'POST', headers: auth, body: bytes });
      if (!response.ok) throw new Error(`Orthanc refused an upload: HTTP ${response.status} ${await response.text()}`);
    };
    admin = new DicomwebClient({ baseUrl: base, user: USER, password: PASSWORD });
    for (const name of RSNA_FILES) {
      const bytes = readFileSync(join(rsnaDir, name));
      await upload(bytes);
      const [found] = await admin.searchStudies({ patientId: name.replace(/\.dcm$/, '') });
      const study = jsonString(found, TAGS.StudyInstanceUID)!;
      const [instance] = await admin.searchInstances(study);
      images.push({
        file: name,
        study,
        series: jsonString(instance, TAGS.SeriesInstanceUID)!,
        sop: jsonString(instance, TAGS.SOPInstanceUID)!,
        patient: name.replace(/\.dcm$/, ''),
      });
    }
    // Study 1 also holds a document and a pixel-less capture; study 2 a broken copy of its image.
    await upload(pdfDocument(images[0].study, images[0].patient));
    await upload(emptyCapture(images[0].study, images[0].patient));
    const copy = brokenCopy(readFileSync(join(rsnaDir, images[1].file)), images[1].sop);
    await upload(copy.bytes);
    broken = copy.uid;

    const checkpoint = referenceCheckpoint();
    if (checkpoint) {
      model = join(dir, 'model');
      await saveReferenceModelDir(model, checkpoint);
    }
  }, 300_000);

  afterAll(async () => {
    admin?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (server.exitCode === null) server.kill('SIGKILL');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('predicts on the studies, stores one SR per image with STOW-RS, reports the non-images and the broken image', async (ctx) => {
    if (!model) ctx.skip(SKIP_REASON);
    const out = join(dir, 'out');
    const run = await runCli([
      'predict',
      '--model',
      model,
      '--dicomweb',
      base,
      '--study',
      images[0].study,
      '--study',
      `${images[1].study},${images[2].study}`,
      '--store',
      '--gsps',
      '--user',
      CREDENTIALS,
      '--out',
      out,
      '--json',
    ]);
    expect(run.exitCode, run.stderr).toBe(1); // the broken image failed; the batch went on
    const result = run.json<Run>();
    expect(result.studies).toBe(3);
    expect(result.predictions.map((p) => p.image).sort()).toEqual(
      images.map((i) => `${base}/studies/${i.study}/series/${i.series}/instances/${i.sop}`).sort(),
    );
    for (const p of result.predictions) expect(p).toMatchObject({ width: 1024, height: 1024 });
    expect(result.predictions.some((p) => p.detections.length > 0)).toBe(true);

    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]).toMatchObject({ study: images[1].study, instance: broken, stage: 'decode' });
    expect(result.failed[0].error.message).toMatch(/JPEG|jpeg|decode|marker|SOI/i);

    const skipped = result.skipped.map((s) => [s.instance, s.reason]);
    expect(skipped).toContainEqual([`${images[0].study}.901`, 'not_image']); // the PDF, by its SOP class
    expect(skipped).toContainEqual([`${images[0].study}.911`, 'not_image']); // the capture, when read
    expect(result.skipped.find((s) => s.instance === `${images[0].study}.901`)?.message).toMatch(
      /encapsulated document/,
    );
    expect(result.skipped.find((s) => s.instance === `${images[0].study}.911`)?.message).toMatch(/Pixel Data/);

    expect(result.stored.map((s) => s.instance).sort()).toEqual(images.map((i) => i.sop).sort());
    // The same outputs as for files: COCO results, CSV, overlays, the reports themselves.
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.length).toBe(result.predictions.reduce((n, p) => n + p.detections.length, 0));
    expect(readdirSync(join(out, 'overlays'))).toHaveLength(3);
    expect(readdirSync(join(out, 'sr'))).toHaveLength(3);
    expect(readdirSync(join(out, 'gsps'))).toHaveLength(3);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.source).toEqual({ dicomweb: base, studies: 3 });
    expect(manifest.failed).toHaveLength(1);

    // Orthanc now holds one fedcxr report and one presentation state per image, in the image's study.
    const reports: string[] = [];
    const states: string[] = [];
    for (const image of images) {
      const stored = result.stored.find((s) => s.instance === image.sop)!;
      for (const [modality, want, files] of [
        ['SR', stored.report, reports],
        ['PR', stored.presentation_state, states],
      ] as const) {
        const series = (await admin.searchSeries(image.study)).filter((s) => jsonString(s, TAGS.Modality) === modality);
        expect(series).toHaveLength(1);
        expect(jsonString(series[0], TAGS.SeriesDescription)).toBe(SR_SERIES_DESCRIPTION);
        const seriesUid = jsonString(series[0], TAGS.SeriesInstanceUID)!;
        const [instance] = await admin.searchInstances(image.study, seriesUid);
        const sop = jsonString(instance, TAGS.SOPInstanceUID)!;
        expect(sop).toBe(want);
        const file = join(dir, `${modality}-${files.length}.dcm`);
        writeFileSync(file, await admin.retrieveInstance(image.study, seriesUid, sop));
        files.push(file);
      }
    }
    if (hasDcmpschk) {
      for (const file of states) {
        const check = spawnSync('dcmpschk', [file], { encoding: 'utf8' });
        expect(`${check.stdout}${check.stderr}`, file).toMatch(/Test passed\./);
      }
    } else
      console.warn('dcmpschk check of the stored presentation states skipped: no dcmpschk (apt-get install dcmtk)');
    if (!existsSync(python)) {
      console.warn(`pydicom read-back of the stored reports skipped: no Python reference environment at ${venv}`);
      return;
    }
    const read = JSON.parse(
      execFileSync(python, [join(repoRoot, 'tools/reference/dicomweb_sr_read.py'), ...reports], { encoding: 'utf8' }),
    ) as {
      study: string;
      modality: string;
      manufacturer: string;
      patient_id: string;
      patient_name: string;
      evidence: { study: string; series: string; sop: string }[];
      groups: { label: string; score: number; points: number[]; ref: string }[];
    }[];
    read.forEach((report, i) => {
      const image = images[i];
      const prediction = result.predictions.find((p) => p.image.endsWith(`/instances/${image.sop}`))!;
      expect(report).toMatchObject({
        study: image.study,
        modality: 'SR',
        manufacturer: 'fedcxr',
        patient_id: image.patient,
        patient_name: image.patient,
      });
      expect(report.evidence).toEqual([{ study: image.study, series: image.series, sop: image.sop }]);
      expect(report.groups).toHaveLength(prediction.detections.length);
      report.groups.forEach((group, g) => {
        const d = prediction.detections[g];
        expect(group.label).toBe(d.category);
        expect(group.score).toBeCloseTo(d.score, 5);
        expect(group.ref).toBe(image.sop);
        const [x, y, w, h] = d.bbox;
        [x, y, x + w, y, x + w, y + h, x, y + h, x, y].forEach((v, k) => {
          expect(group.points[k]).toBeCloseTo(v, 2);
        });
      });
    });
    const presentations = JSON.parse(
      execFileSync(python, [join(repoRoot, 'tools/reference/dicomweb_sr_read.py'), ...states], { encoding: 'utf8' }),
    ) as {
      study: string;
      modality: string;
      images: string[];
      graphics: { type: string; units: string; points: number[] }[];
      texts: string[];
      presentation_lut: string;
    }[];
    presentations.forEach((state, i) => {
      const image = images[i];
      const prediction = result.predictions.find((p) => p.image.endsWith(`/instances/${image.sop}`))!;
      expect(state).toMatchObject({
        study: image.study,
        modality: 'PR',
        images: [image.sop],
        presentation_lut: 'IDENTITY',
      });
      expect(state.graphics).toHaveLength(prediction.detections.length);
      expect(state.texts).toEqual(prediction.detections.map((d) => `${d.category} ${d.score.toFixed(2)}`));
      state.graphics.forEach((graphic, g) => {
        const [x, y, w, h] = prediction.detections[g].bbox;
        expect(graphic).toMatchObject({ type: 'POLYLINE', units: 'PIXEL' });
        [x, y, x + w, y, x + w, y + h, x, y + h, x, y].forEach((v, k) => {
          expect(graphic.points[k]).toBeCloseTo(v, 2);
        });
      });
    });
  }, 300_000);

  it('a rerun (found by QIDO-RS: modality and date) skips every image a fedcxr report covers', async (ctx) => {
    if (!model) ctx.skip(SKIP_REASON);
    const run = await runCli([
      'predict',
      '--model',
      model,
      '--dicomweb',
      base,
      '--modality',
      'CR,DX',
      '--since',
      '19000101',
      '--store',
      '--user',
      CREDENTIALS,
      '--json',
    ]);
    expect(run.exitCode, run.stderr).toBe(1); // the broken image is still broken
    const result = run.json<Run>();
    expect(result.studies).toBe(3);
    expect(result.predictions).toEqual([]);
    expect(result.stored).toEqual([]);
    const done = result.skipped.filter((s) => s.reason === 'already_stored').map((s) => s.instance);
    expect(done.sort()).toEqual(images.map((i) => i.sop).sort());
    // The document and the capture are in series of other modalities now.
    // (fedcxr's own reports and presentation states are outputs, not listed.)
    expect(result.skipped.filter((s) => s.reason === 'modality').map((s) => s.series)).toEqual([
      `${images[0].study}.900`,
      `${images[0].study}.910`,
    ]);
    expect(result.failed.map((f) => f.instance)).toEqual([broken]);
    // Still one report per study: nothing was stored twice.
    for (const image of images) {
      const reports = (await admin.searchSeries(image.study)).filter((s) => jsonString(s, TAGS.Modality) === 'SR');
      expect(reports).toHaveLength(1);
    }
    // --force redoes a reported image (a second report, in a new series of this run).
    const forced = await runCli([
      'predict',
      '--model',
      model,
      '--dicomweb',
      base,
      '--study',
      images[2].study,
      '--store',
      '--force',
      '--user',
      CREDENTIALS,
      '--json',
    ]);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.json<Run>().stored.map((s) => s.instance)).toEqual([images[2].sop]);
    const reports = (await admin.searchSeries(images[2].study)).filter((s) => jsonString(s, TAGS.Modality) === 'SR');
    expect(reports).toHaveLength(2);
  }, 300_000);

  it('dataset import --dicomweb pulls the images as stored (credentials from the environment), then resumes', async () => {
    const out = join(dir, 'pulled');
    process.env.CXR_DICOMWEB_USER = CREDENTIALS;
    try {
      const args = ['dataset', 'import', '--dicomweb', base, '--modality', 'CR', '--name-by', 'patient', '--out', out];
      const first = await runCli([...args, '--json']);
      expect(first.exitCode, first.stderr).toBe(0);
      const pulled = first.json<{ pulled: { file: string; instance: string }[]; skipped: { reason: string }[] }>();
      // Three images and the broken copy (pulling does not decode); study 2's patient has two files.
      expect(pulled.pulled).toHaveLength(4);
      const files = readdirSync(join(out, 'dicom')).sort();
      expect(files).toEqual([...images.map((i) => `${i.patient}.dcm`), `${images[1].patient}_2.dcm`].sort());
      for (const image of images) {
        // Byte for byte what was uploaded (the stored transfer syntax, JPEG baseline).
        expect(
          readFileSync(join(out, 'dicom', `${image.patient}.dcm`)).equals(readFileSync(join(rsnaDir, image.file))),
        ).toBe(true);
      }
      const again = await runCli([...args, '--json']);
      expect(again.exitCode).toBe(0);
      const second = again.json<{ pulled: unknown[]; kept: unknown[] }>();
      expect(second.pulled).toHaveLength(0);
      expect(second.kept).toHaveLength(4);
    } finally {
      delete process.env.CXR_DICOMWEB_USER;
    }
  }, 300_000);

  it('401: says authentication failed and which flags to give; wrong credentials: says they were refused', async () => {
    const anonymous = await runCli([
      'dataset',
      'import',
      '--dicomweb',
      base,
      '--study',
      images[0].study,
      '--out',
      join(dir, 'x'),
    ]);
    expect(anonymous.exitCode).toBe(3);
    expect(anonymous.stderr).toMatch(
      new RegExp(
        `authentication failed at ${base.replace(/[.]/g, '\\.')}/studies.*HTTP 401.*give --user name:password .*--token`,
      ),
    );
    const wrong = await runCli([
      'dataset',
      'import',
      '--dicomweb',
      base,
      '--study',
      images[0].study,
      '--user',
      `${USER}:nope`,
      '--out',
      join(dir, 'x'),
      '--json',
    ]);
    expect(wrong.exitCode).toBe(3);
    const { error } = wrong.json<{ error: { code: string; message: string } }>();
    expect(error.code).toBe('dicomweb_auth');
    expect(error.message).toMatch(/refused the credentials/);
  });

  it('an unknown study says so; with a known one beside it, it is a failure and the rest goes on', async () => {
    const unknown = await runCli([
      'dataset',
      'import',
      '--dicomweb',
      base,
      '--study',
      '1.2.3.4.999',
      '--user',
      CREDENTIALS,
      '--out',
      join(dir, 'y'),
    ]);
    expect(unknown.exitCode).toBe(3);
    expect(unknown.stderr).toContain(`no study 1.2.3.4.999 on ${base} (unknown study)`);
    const mixed = await runCli([
      'dataset',
      'import',
      '--dicomweb',
      base,
      '--study',
      `1.2.3.4.999,${images[2].study}`,
      '--user',
      CREDENTIALS,
      '--out',
      join(dir, 'y'),
      '--json',
    ]);
    expect(mixed.exitCode).toBe(1);
    const result = mixed.json<{
      pulled: unknown[];
      failed: { study: string; stage: string; error: { code: string } }[];
    }>();
    expect(result.pulled).toHaveLength(1);
    expect(result.failed).toEqual([
      expect.objectContaining({
        study: '1.2.3.4.999',
        stage: 'study',
        error: expect.objectContaining({ code: 'dicomweb_unknown_study' }),
      }),
    ]);
  });

  it('a server that is down: connection refused, naming the URL', async () => {
    const port = await freePort();
    const down = await runCli([
      'predict',
      '--model',
      model || dir,
      '--dicomweb',
      `http://127.0.0.1:${port}/dicom-web`,
      '--study',
      '1.2.3',
    ]);
    expect(down.exitCode).toBe(3);
    expect(down.stderr).toContain(
      `cxr: cannot reach the DICOMweb server at http://127.0.0.1:${port}/dicom-web/studies?StudyInstanceUID=1.2.3: connection refused`,
    );
  });
});

describe('cxr predict --dicomweb: usage', () => {
  it('needs a selection, a URL, and no input files beside it', async () => {
    const none = await runCli(['predict', '--model', 'm', '--dicomweb', 'http://127.0.0.1:1/dw']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/needs --study, --modality, --since or --until/);
    const both = await runCli([
      'predict',
      'a.png',
      '--model',
      'm',
      '--dicomweb',
      'http://127.0.0.1:1/dw',
      '--study',
      '1',
    ]);
    expect(both.exitCode).toBe(2);
    const url = await runCli(['predict', '--model', 'm', '--dicomweb', 'pacs:8042', '--study', '1']);
    expect(url.exitCode).toBe(2);
    expect(url.stderr).toMatch(/must be an http:\/\/ or https:\/\/ URL/);
    const date = await runCli(['predict', '--model', 'm', '--dicomweb', 'http://h/dw', '--since', '2024-01-01']);
    expect(date.stderr).toMatch(/--since must be a date written YYYYMMDD/);
    const gsps = await runCli(['predict', '--model', 'm', '--dicomweb', 'http://h/dw', '--study', '1', '--gsps']);
    expect(gsps.exitCode).toBe(2);
    expect(gsps.stderr).toMatch(/--gsps writes presentation states under --out, or with --store/);
    const stray = await runCli(['predict', 'a.png', '--model', 'm', '--store']);
    expect(stray.exitCode).toBe(2);
    expect(stray.stderr).toMatch(/--store needs --dicomweb/);
    const pull = await runCli(['dataset', 'import', 'src', '--dicomweb', 'http://h/dw', '--study', '1', '--out', 'o']);
    expect(pull.exitCode).toBe(2);
    expect(pull.stderr).toMatch(/either <src> or --dicomweb/);
    const format = await runCli([
      'dataset',
      'import',
      '--dicomweb',
      'http://h/dw',
      '--study',
      '1',
      '--format',
      'rsna',
      '--out',
      'o',
    ]);
    expect(format.exitCode).toBe(2);
    expect(format.stderr).toMatch(/only pulls the images/);
    const plain = await runCli(['dataset', 'import', '--out', 'o']);
    expect(plain.exitCode).toBe(2);
    expect(plain.stderr).toMatch(/needs <src> and --format/);
  });
});
