import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGreyJpeg, encodeGreyPng, type GreyRaster } from '@fedcxr/base';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCsv } from './csv.js';
import { parseDatasetSource } from './formats/index.js';
import { parseVocXml } from './formats/voc.js';
import { parseYoloLabels } from './formats/yolo.js';
import { type DatasetIssue, formatIssue } from './source.js';

const scratch = await mkdtemp(join(tmpdir(), 'fedcxr-formats-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

async function put(path: string, content: string | Uint8Array): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  return path;
}

function mask(width: number, height: number, rects: [number, number, number, number][]): GreyRaster {
  const data = new Uint8Array(width * height);
  for (const [x, y, w, h] of rects) for (let r = y; r < y + h; r++) data.fill(255, r * width + x, r * width + x + w);
  return { width, height, channels: 1, bitDepth: 8, data };
}

const png = (w: number, h: number) => encodeGreyPng(mask(w, h, []));

describe('csv', () => {
  it('reads quoted fields with commas and reports lines', () => {
    const table = parseCsv('\uFEFFa,b\r\n1,"x, ""y"""\n\n2,3\n', 't.csv', ['a']);
    expect(table.rows).toEqual([
      { line: 2, values: { a: '1', b: 'x, "y"' } },
      { line: 4, values: { a: '2', b: '3' } },
    ]);
  });
  it('names file and line for a short row, a missing column, an open quote', () => {
    expect(() => parseCsv('a,b\n1,2\n3\n', 't.csv')).toThrow(/t\.csv: line 3: expected 2 fields \(a,b\), found 1/);
    expect(() => parseCsv('a,b\n', 't.csv', ['c'])).toThrow(/t\.csv: line 1: missing column\(s\) "c"/);
    expect(() => parseCsv('a,b\n1,"2\n', 't.csv')).toThrow(/t\.csv: line 2: unterminated quoted field/);
  });
});

describe('rsna', () => {
  const labels = [
    'patientId,x,y,width,height,Target',
    'p1,10,20,30,40,1',
    'p1,50,60,5,6,1',
    'p2,,,,,0',
    'p3,,,,,0',
  ].join('\n');

  it('one category, boxes per patient, negatives kept, class info attached', async () => {
    const root = join(scratch, 'rsna');
    await put(join(root, 'stage_2_train_labels.csv'), labels);
    await put(
      join(root, 'stage_2_detailed_class_info.csv'),
      'patientId,class\np1,Lung Opacity\np2,Normal\np3,Lung Opacity\n',
    );
    for (const p of ['p1', 'p2', 'p4']) await put(join(root, 'dicom', `${p}.dcm`), 'x');
    const source = await parseDatasetSource('rsna', root);
    expect(source.categories).toEqual(['lung_opacity']);
    expect(source.items.map((i) => [i.patientId, i.boxes.length, i.extra?.rsna_class])).toEqual([
      ['p1', 2, 'Lung Opacity'],
      ['p2', 0, 'Normal'],
    ]);
    expect(source.items[0].boxes[1]).toEqual({ category: 'lung_opacity', bbox: [50, 60, 5, 6] });
    const codes = source.issues.map((i) => `${i.code}@${i.line ?? '-'}`).sort();
    // p3 labelled but has no image; p3's class says opacity but Target 0; p4 has an image but no label.
    expect(codes).toEqual(['class_target_mismatch@4', 'missing_file@5', 'unlabelled_image@-']);
  });

  it('lists 20 missing images, then counts the rest', async () => {
    const root = join(scratch, 'rsna-many');
    const rows = Array.from({ length: 25 }, (_, i) => `q${i},,,,,0`);
    await put(join(root, 'stage_2_train_labels.csv'), ['patientId,x,y,width,height,Target', ...rows].join('\n'));
    await put(join(root, 'dicom', 'q3.dcm'), 'x');
    const source = await parseDatasetSource('rsna', root);
    expect(source.items.map((i) => i.patientId)).toEqual(['q3']);
    const missing = source.issues.filter((i) => i.code === 'missing_file');
    expect(missing).toHaveLength(21);
    expect(formatIssue(missing[20])).toMatch(/\.\.\. and 4 more labelled patients without an image/);
  });

  it('malformed rows are errors naming file and line', async () => {
    const cases: [string, RegExp][] = [
      ['p1,10,20,abc,40,1', /line 2: column "width" is not a number: "abc"/],
      ['p1,10,20,30,40,2', /line 2: Target must be 0 or 1/],
      ['p1,,,,,1', /line 2: Target 1 row needs x, y, width and height/],
      ['p1,1,2,3,4,0', /line 2: Target 0 row must have an empty box/],
      ['p1,1,2,0,4,1', /line 2: box has zero or negative size/],
      ['p1,1,2,3', /line 2: expected 6 fields/],
    ];
    for (const [row, message] of cases) {
      const root = join(scratch, `rsna-bad-${cases.findIndex((c) => c[0] === row)}`);
      await put(join(root, 'stage_2_train_labels.csv'), `patientId,x,y,width,height,Target\n${row}\n`);
      await expect(parseDatasetSource('rsna', root)).rejects.toThrow(message);
      await expect(parseDatasetSource('rsna', root)).rejects.toThrow(/stage_2_train_labels\.csv: line/);
    }
    await expect(parseDatasetSource('rsna', join(scratch, 'nowhere'))).rejects.toThrow(
      /stage_2_train_labels\.csv: cannot read/,
    );
  });
});

describe('seed', () => {
  it('boxes from masks (PNG and JPEG, several components), CSV disagreements reported, normals kept', async () => {
    const root = join(scratch, 'seed');
    await put(join(root, 'train/scoliosis/image/A_1.dcm'), 'x');
    await put(
      join(root, 'train/scoliosis/mark/A_1.png'),
      encodeGreyPng(
        mask(64, 48, [
          [10, 5, 8, 30],
          [40, 10, 6, 6],
        ]),
      ),
    );
    await put(join(root, 'train/cardiac_hypertrophy/image/B_1.dcm'), 'x');
    await put(
      join(root, 'train/cardiac_hypertrophy/mark/B_1.jpg'),
      encodeGreyJpeg(mask(64, 48, [[20, 20, 30, 20]]), 80),
    );
    await put(join(root, 'train/cardiac_hypertrophy/image/C_1.dcm'), 'x'); // no mask: CSV boxes used
    await put(join(root, 'train/normal/image/D_1.dcm'), 'x');
    await put(join(root, 'test/image/E_1.dcm'), 'x');
    await put(
      join(root, 'train.csv'),
      [
        'file,category,box',
        'A_1.dcm,scoliosis,"[10, 5, 8, 30]"', // agrees
        'A_1.dcm,scoliosis,"[0, 40, 5, 5]"', // no such mask box (line 3); mask box [40,10,6,6] missing from CSV
        'B_1.dcm,cardiac_hypertrophy,20 20 30 20',
        'C_1.dcm,cardiac_hypertrophy,[1;2;3;4]',
        'D_1.dcm,normal,',
        'Z_9.dcm,scoliosis,"[1, 1, 2, 2]"',
      ].join('\n'),
    );
    const source = await parseDatasetSource('seed', root);
    expect(source.categories).toEqual(['cardiac_hypertrophy', 'scoliosis']);
    const byName = new Map(source.items.map((i) => [i.path.split('/').pop(), i]));
    expect([...byName.keys()].sort()).toEqual(['A_1.dcm', 'B_1.dcm', 'C_1.dcm', 'D_1.dcm']);
    expect(byName.get('A_1.dcm')?.boxes.map((b) => b.bbox)).toEqual([
      [10, 5, 8, 30],
      [40, 10, 6, 6],
    ]);
    expect(byName.get('A_1.dcm')?.declaredSize).toEqual({ width: 64, height: 48 });
    const jpegBox = byName.get('B_1.dcm')?.boxes[0].bbox as number[];
    for (const [k, v] of [20, 20, 30, 20].entries()) expect(Math.abs(jpegBox[k] - v)).toBeLessThanOrEqual(1);
    expect(byName.get('C_1.dcm')?.boxes).toEqual([{ category: 'cardiac_hypertrophy', bbox: [1, 2, 3, 4] }]);
    expect(byName.get('D_1.dcm')?.boxes).toEqual([]);
    const issues = source.issues.map(formatIssue);
    expect(issues).toContainEqual(expect.stringMatching(/train\.csv:3: box \[0, 40, 5, 5\] matches no mask box/));
    expect(issues).toContainEqual(expect.stringMatching(/A_1\.png: mask box \[40, 10, 6, 6\] is not in train\.csv/));
    expect(issues).toContainEqual(expect.stringMatching(/C_1\.dcm: no mask in mark\/: using the train\.csv boxes/));
    expect(issues).toContainEqual(expect.stringMatching(/train\.csv:7: no image "Z_9\.dcm"/));
    expect(source.issues.filter((i) => i.code === 'mask_csv_mismatch')).toHaveLength(2);
    const withTest = await parseDatasetSource('seed', root, { includeTest: true });
    expect(withTest.items.map((i) => i.path.split('/').pop())).toContain('E_1.dcm');
  });

  it('malformed train.csv and a missing train/ are errors naming the file', async () => {
    const root = join(scratch, 'seed-bad');
    await put(join(root, 'train/scoliosis/image/A_1.dcm'), 'x');
    await put(join(root, 'train.csv'), 'file,category,box\nA_1.dcm,scoliosis,"[1, 2, 3]"\n');
    await expect(parseDatasetSource('seed', root)).rejects.toThrow(/train\.csv: line 2: box must be 4 numbers/);
    await put(join(root, 'train.csv'), 'file,box\n');
    await expect(parseDatasetSource('seed', root)).rejects.toThrow(
      /train\.csv: line 1: unrecognised header "file,box": needs a category column \(category \/ class \/ label/,
    );
    await expect(parseDatasetSource('seed', scratch)).rejects.toThrow(/no train\/ folder/);
  });
});

describe('voc', () => {
  const xml = (objects: string, size = '<size><width>40</width><height>30</height><depth>1</depth></size>') =>
    `<annotation><filename>img1.png</filename>${size}${objects}</annotation>`;
  const object = (name: string, box: number[]) =>
    `<object><name>${name}</name><bndbox><xmin>${box[0]}</xmin><ymin>${box[1]}</ymin><xmax>${box[2]}</xmax><ymax>${box[3]}</ymax></bndbox></object>`;

  it('1-based inclusive corners become COCO boxes; declared size kept', async () => {
    const root = join(scratch, 'voc');
    await put(join(root, 'JPEGImages/img1.png'), png(40, 30));
    await put(
      join(root, 'Annotations/img1.xml'),
      xml(object('nodule', [1, 1, 10, 5]) + object('mass', [11, 6, 40, 30])),
    );
    await put(
      join(root, 'Annotations/img2.xml'),
      '<annotation><filename>img2.png</filename>\n<object><name>x</name>\n</annotation>',
    );
    const source = await parseDatasetSource('voc', root);
    expect(source.categories).toEqual(['mass', 'nodule']);
    expect(source.items).toHaveLength(1);
    expect(source.items[0].boxes).toEqual([
      { category: 'nodule', bbox: [0, 0, 10, 5] },
      { category: 'mass', bbox: [10, 5, 30, 25] },
    ]);
    expect(source.items[0].declaredSize).toEqual({ width: 40, height: 30 });
    expect(source.items[0].patientId).toBe('img1');
    // The broken file is skipped with its line.
    expect(source.issues.map(formatIssue)).toEqual([expect.stringMatching(/img2\.xml:3: broken XML \(column \d+\)/)]);
  });

  it('bad content names the file and the object', () => {
    const issues: DatasetIssue[] = [];
    expect(parseVocXml(xml(object('a', [5, 5, 3, 9])), 'a.xml', issues)).toBeNull();
    expect(parseVocXml(xml(object('a', [1, 1, 50, 9])), 'b.xml', issues)).toBeNull();
    expect(parseVocXml(xml('<object><name>a</name></object>'), 'c.xml', issues)).toBeNull();
    expect(parseVocXml(xml('', '<size><width>0</width><height>3</height></size>'), 'd.xml', issues)).toBeNull();
    expect(issues.map(formatIssue)).toEqual([
      expect.stringMatching(/^a\.xml: object 1: empty box/),
      expect.stringMatching(/^b\.xml: object 1: box ends outside the image/),
      expect.stringMatching(/^c\.xml: object 1: no <bndbox>/),
      expect.stringMatching(/^d\.xml: <size> must hold positive integer/),
    ]);
  });
});

describe('yolo', () => {
  it('normalized centre boxes with a names file; images without labels are negatives', async () => {
    const root = join(scratch, 'yolo');
    await put(join(root, 'classes.txt'), 'opacity\nnodule\n');
    await put(join(root, 'images/a.png'), png(100, 50));
    await put(join(root, 'images/b.png'), png(100, 50));
    await put(join(root, 'images/c.png'), png(100, 50));
    await put(join(root, 'labels/a.txt'), '0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.2 0.2\n');
    await put(join(root, 'labels/c.txt'), '0 0.5 0.5 0.2\n');
    const source = await parseDatasetSource('yolo', root, { patientPattern: /^(.)/ });
    expect(source.categories).toEqual(['opacity', 'nodule']);
    expect(source.items.map((i) => i.path.split('/').pop())).toEqual(['a.png', 'b.png']);
    expect(source.items[0].normalized).toBe(true);
    expect(source.items[0].boxes[0].bbox.map((v) => +v.toFixed(6))).toEqual([0.4, 0.3, 0.2, 0.4]);
    expect(source.items[0].boxes[1]).toEqual({ category: 'nodule', bbox: [0, 0, 0.2, 0.2] });
    expect(source.items[1].boxes).toEqual([]);
    expect(source.issues.map(formatIssue)).toEqual([expect.stringMatching(/c\.txt:1: expected 5 fields/)]);
  });

  it('every malformed line is named', () => {
    const bad: [string, RegExp][] = [
      ['2 0.5 0.5 0.1 0.1', /:1: class 2 is not an index/],
      ['0 0.5 0.5 0 0.1', /:1: box has zero or negative size/],
      ['0 0.95 0.5 0.2 0.1', /:1: box reaches outside the image/],
      ['\n0 a 0.5 0.1 0.1', /:2: not a number/],
    ];
    for (const [text, message] of bad) {
      const issues: DatasetIssue[] = [];
      expect(parseYoloLabels(text, 'l.txt', ['a', 'b'], issues)).toBeNull();
      expect(formatIssue(issues[0])).toMatch(message);
    }
  });

  it('reads data.yaml names and refuses a missing names file', async () => {
    const root = join(scratch, 'yolo-yaml');
    await put(join(root, 'images/a.png'), png(10, 10));
    await put(join(root, 'data.yaml'), 'path: .\nnames:\n  0: cat\n  1: dog\n');
    expect((await parseDatasetSource('yolo', root)).categories).toEqual(['cat', 'dog']);
    await put(join(root, 'data.yaml'), 'names: [a, "b"]\n');
    expect((await parseDatasetSource('yolo', root)).categories).toEqual(['a', 'b']);
    await rm(join(root, 'data.yaml'));
    await expect(parseDatasetSource('yolo', root)).rejects.toThrow(/no class names file/);
  });
});

describe('coco source', () => {
  it('rejects dangling ids, empty boxes and boxes outside the image, naming each item', async () => {
    const file = await put(
      join(scratch, 'coco/bad.json'),
      JSON.stringify({
        images: [{ id: 1, file_name: 'a.png', width: 10, height: 10 }],
        categories: [{ id: 1, name: 'x' }],
        annotations: [
          { id: 1, image_id: 2, category_id: 1, bbox: [0, 0, 1, 1], area: 1, iscrowd: 0 },
          { id: 2, image_id: 1, category_id: 1, bbox: [0, 0, 0, 1], area: 0, iscrowd: 0 },
          { id: 3, image_id: 1, category_id: 1, bbox: [5, 5, 6, 2], area: 12, iscrowd: 0 },
          { id: 4, image_id: 1, category_id: 9, bbox: [1, 1, 2, 2], area: 4, iscrowd: 0 },
        ],
      }),
    );
    const error = await parseDatasetSource('coco', file).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toMatch(/bad\.json: 4 problem\(s\)/);
    expect(message).toMatch(/annotations\[0\] \(id 1\): image_id 2 matches no image/);
    expect(message).toMatch(/annotations\[1\] \(id 2\): bbox has zero or negative size/);
    expect(message).toMatch(/annotations\[2\] \(id 3\): bbox \[5, 5, 6, 2\] reaches outside image 1/);
    expect(message).toMatch(/annotations\[3\] \(id 4\): category_id 9 matches no category/);
    await put(join(scratch, 'coco/broken.json'), '{"images": [');
    await expect(parseDatasetSource('coco', join(scratch, 'coco/broken.json'))).rejects.toThrow(
      /broken\.json: not valid JSON/,
    );
  });

  it('valid COCO becomes items with declared sizes and patient ids', async () => {
    const file = await put(
      join(scratch, 'coco/good.json'),
      JSON.stringify({
        images: [
          { id: 7, file_name: 'a.png', width: 10, height: 10, patient_id: 'P1' },
          { id: 8, file_name: 'b.png', width: 10, height: 10 },
        ],
        categories: [
          { id: 3, name: 'y' },
          { id: 1, name: 'x' },
        ],
        annotations: [{ id: 1, image_id: 7, category_id: 3, bbox: [1, 1, 2, 2], area: 4, iscrowd: 0 }],
      }),
    );
    const source = await parseDatasetSource('coco', file);
    expect(source.categories).toEqual(['x', 'y']);
    expect(source.items.map((i) => [i.patientId, i.boxes])).toEqual([
      ['P1', [{ category: 'y', bbox: [1, 1, 2, 2] }]],
      ['b', []],
    ]);
  });
});
