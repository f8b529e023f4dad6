/**
 * Exports nobody here wrote: label CSVs under other column names, VOC sets laid out as TBX11K is, VinDr-CXR
 * with several readers per image, NIH ChestX-ray14 with its spilling headers. Small synthetic fixtures.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGreyPng } from '@fedcxr/base';
import { afterAll, describe, expect, it } from 'vitest';
import { parseColumnOverrides, resolveLabelColumns } from './columns.js';
import { parseCsv } from './csv.js';
import { parseDatasetSource } from './formats/index.js';
import { readSeedCsv } from './formats/seed.js';
import { readVindrCsv } from './formats/vindr.js';
import { weightedBoxesFusion } from './fusion.js';
import { formatIssue } from './source.js';

const scratch = await mkdtemp(join(tmpdir(), 'fedcxr-hospital-formats-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

async function put(path: string, content: string | Uint8Array): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  return path;
}

function maskPng(width: number, height: number, rects: [number, number, number, number][]): Uint8Array {
  const data = new Uint8Array(width * height);
  for (const [x, y, w, h] of rects) for (let r = y; r < y + h; r++) data.fill(255, r * width + x, r * width + x + w);
  return encodeGreyPng({ width, height, channels: 1, bitDepth: 8, data });
}

describe('label CSV columns under their common names', () => {
  const resolve = (header: string, overrides = {}) => resolveLabelColumns(header.split(','), 'labels.csv', overrides);

  it('recognises file, category and each box spelling', () => {
    expect(resolve('filename,category,xmin,ymin,xmax,ymax')).toEqual({
      file: 'filename',
      category: 'category',
      box: { kind: 'corners', xmin: 'xmin', ymin: 'ymin', xmax: 'xmax', ymax: 'ymax' },
    });
    expect(resolve('image_id,class_name,x_min,y_min,x_max,y_max').box.kind).toBe('corners');
    expect(resolve('Path,Label,x1,y1,x2,y2')).toMatchObject({ file: 'Path', category: 'Label' });
    expect(resolve('image,finding,bbox')).toEqual({
      file: 'image',
      category: 'finding',
      box: { kind: 'text', box: 'bbox' },
    });
    expect(resolve('Image,Class,x,y,w,h').box).toEqual({ kind: 'xywh', x: 'x', y: 'y', width: 'w', height: 'h' });
    // The seed's own spellings still work, and xmin with a width is a corner plus a size.
    expect(resolve('file,category,xmin,ymin,width,height').box).toEqual({
      kind: 'xywh',
      x: 'xmin',
      y: 'ymin',
      width: 'width',
      height: 'height',
    });
  });

  it('--columns names the rest, exactly or in any spelling', () => {
    const overrides = parseColumnOverrides('file=Study Image, category=Dx,xmin=L,ymin=T,xmax=R,ymax=B');
    expect(resolve('Study Image,Dx,L,T,R,B', overrides)).toEqual({
      file: 'Study Image',
      category: 'Dx',
      box: { kind: 'corners', xmin: 'L', ymin: 'T', xmax: 'R', ymax: 'B' },
    });
    expect(resolve('STUDY_IMAGE,Dx,box', parseColumnOverrides('file=study image,category=dx')).file).toBe(
      'STUDY_IMAGE',
    );
    expect(() => parseColumnOverrides('picture=a')).toThrow(
      /--columns: unknown role "picture" \(roles: file, category/,
    );
    expect(() => parseColumnOverrides('file=')).toThrow(/names no column/);
    expect(() => resolve('a,b,box', parseColumnOverrides('file=img'))).toThrow(
      /labels\.csv: line 1: --columns file=img: no such column; header is "a,b,box"/,
    );
  });

  it('an unrecognised header lists what it found and what is accepted', () => {
    let message = '';
    try {
      resolve('picture,diagnosis,left,top');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^labels\.csv: line 1: unrecognised header "picture,diagnosis,left,top"/);
    expect(message).toMatch(/a file column \(file \/ filename \/ image \/ imageid/);
    expect(message).toMatch(/a category column \(category \/ class \/ label \/ finding/);
    expect(message).toMatch(/a box: a "box"\/"bbox" column/);
    expect(message).toMatch(/--columns file=/);
  });

  it('corner columns become [x, y, w, h]; malformed rows name file and line', () => {
    const text = 'filename,category,xmin,ymin,xmax,ymax\na.dcm,nodule,10,20,40,60\nb.dcm,normal,,,,\n';
    expect(readSeedCsv(text, 'train.csv')).toEqual(
      new Map([
        ['nodule|a.dcm', [{ box: [10, 20, 30, 40], line: 2, category: 'nodule' }]],
        ['normal|b.dcm', [{ box: [0, 0, 0, 0], line: 3, category: 'normal' }]],
      ]),
    );
    expect(() => readSeedCsv('filename,category,xmin,ymin,xmax,ymax\na.dcm,x,10,20,5,60\n', 't.csv')).toThrow(
      /t\.csv: line 2: box has zero or negative size \(-5x40\)/,
    );
    expect(() => readSeedCsv('filename,category,xmin,ymin,xmax,ymax\na.dcm,x,10,20,,60\n', 't.csv')).toThrow(
      /t\.csv: line 2: box needs all of xmin, ymin, xmax, ymax/,
    );
    expect(() => readSeedCsv('filename,category,xmin,ymin,xmax,ymax\na.dcm,x,ten,20,30,60\n', 't.csv')).toThrow(
      /t\.csv: line 2: column "xmin" is not a number: "ten"/,
    );
  });

  it('ignores padding cells and rewrites a spilling header when asked', () => {
    const table = parseCsv('a,b [x,y],,\n1,2,3,,\n4,5,6\n', 'p.csv', [], {
      trailingEmpty: true,
      header: (names) => [names[0], 'bx', 'by'],
    });
    expect(table.header).toEqual(['a', 'bx', 'by']);
    expect(table.rows.map((r) => r.values)).toEqual([
      { a: '1', bx: '2', by: '3' },
      { a: '4', bx: '5', by: '6' },
    ]);
    expect(() => parseCsv('a,b\n1,2,3\n', 'p.csv', [], { trailingEmpty: true })).toThrow(/line 2: expected 2 fields/);
  });
});

describe('seed export with another train.csv header', () => {
  it('imports `filename,category,xmin,ymin,xmax,ymax`, and without train.csv says so once', async () => {
    const root = join(scratch, 'seed-variant');
    await put(join(root, 'train/scoliosis/image/A_1.dcm'), 'x');
    await put(join(root, 'train/scoliosis/mark/A_1.png'), maskPng(64, 48, [[10, 5, 8, 30]]));
    await put(join(root, 'train/scoliosis/image/B_1.dcm'), 'x');
    await put(join(root, 'train/scoliosis/mark/B_1.png'), maskPng(64, 48, [[20, 20, 10, 10]]));
    await put(
      join(root, 'train.csv'),
      'filename,category,xmin,ymin,xmax,ymax\nA_1.dcm,scoliosis,10,5,18,35\nB_1.dcm,scoliosis,20,20,30,30\n',
    );
    const withCsv = await parseDatasetSource('seed', root);
    expect(withCsv.items).toHaveLength(2);
    expect(withCsv.issues).toEqual([]);

    await rm(join(root, 'train.csv'));
    const without = await parseDatasetSource('seed', root);
    expect(without.items.map((i) => i.boxes.map((b) => b.bbox))).toEqual([[[10, 5, 8, 30]], [[20, 20, 10, 10]]]);
    expect(without.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/train\.csv: no train\.csv: boxes come from the masks only$/),
    ]);
  });
});

describe('VOC laid out as real sets are', () => {
  const xml = (filename: string, boxes: [string, number, number, number, number][]) =>
    `<annotation><filename>${filename}</filename><size><width>64</width><height>48</height><depth>1</depth></size>${boxes
      .map(
        ([name, x0, y0, x1, y1]) =>
          `<object><name>${name}</name><bndbox><xmin>${x0}</xmin><ymin>${y0}</ymin><xmax>${x1}</xmax><ymax>${y1}</ymax></bndbox></object>`,
      )
      .join('')}</annotation>`;

  it('TBX11K: <filename> without extension, images under imgs/<class>/, XML under annotations/xml/', async () => {
    const root = join(scratch, 'tbx11k');
    await put(join(root, 'imgs/tb/tb0003.png'), maskPng(64, 48, []));
    await put(join(root, 'imgs/health/h0001.png'), maskPng(64, 48, []));
    await put(join(root, 'annotations/xml/tb0003.xml'), xml('tb0003', [['ActiveTuberculosis', 11, 6, 30, 20]]));
    await put(join(root, 'annotations/xml/h0001.xml'), xml('h0001.png', []));
    await put(join(root, 'annotations/xml/gone.xml'), xml('tb9999', []));
    await put(join(root, 'annotations/json/ignored.json'), '{}');
    const source = await parseDatasetSource('voc', root);
    expect(source.items.map((i) => i.path.slice(root.length + 1)).sort()).toEqual([
      'imgs/health/h0001.png',
      'imgs/tb/tb0003.png',
    ]);
    const tb = source.items.find((i) => i.path.endsWith('tb0003.png'));
    expect(tb?.boxes).toEqual([{ category: 'ActiveTuberculosis', bbox: [10, 5, 20, 15] }]);
    expect(source.issues.map(formatIssue)).toEqual([
      expect.stringMatching(
        /gone\.xml: image "tb9999" not found \(looked beside the XML and under JPEGImages\/, images\/, imgs\/, with the extensions \.png .*\); skipped/,
      ),
    ]);
  });

  it('images beside the XML or under images/ in subfolders; two images of one name are a warning', async () => {
    const root = join(scratch, 'voc-mixed');
    await put(join(root, 'xml/a.xml'), xml('a', [['nodule', 1, 1, 10, 10]]));
    await put(join(root, 'images/left/a.jpg'), maskPng(64, 48, []));
    await put(join(root, 'images/right/a.png'), maskPng(64, 48, []));
    await put(join(root, 'xml/b.xml'), xml('b.png', []));
    await put(join(root, 'xml/b.png'), maskPng(64, 48, []));
    const source = await parseDatasetSource('voc', root);
    expect(source.items.map((i) => i.path.slice(root.length + 1))).toEqual(['images/left/a.jpg', 'xml/b.png']);
    expect(source.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/a\.xml: "a" matches 2 images; using images\/left\/a\.jpg \(also images\/right\/a\.png\)/),
    ]);
  });
});

describe('weighted boxes fusion', () => {
  it('averages the corners of overlapping boxes and keeps distinct ones apart', () => {
    const fused = weightedBoxesFusion(
      [
        { bbox: [10, 10, 20, 20] },
        { bbox: [12, 12, 20, 20] }, // IoU with the first 0.68: fused
        { bbox: [100, 100, 10, 10] }, // far away: its own
        { bbox: [14, 8, 20, 24] }, // IoU with the fused [11,11,20,20] ≈ 0.61: fused
      ],
      0.4,
    );
    expect(fused).toHaveLength(2);
    expect(fused[0].members).toEqual([0, 1, 3]);
    // Corners: x0 (10+12+14)/3 = 12, y0 (10+12+8)/3 = 10, x1 (30+32+34)/3 = 32, y1 (30+32+32)/3 ≈ 31.333.
    expect(fused[0].bbox[0]).toBeCloseTo(12, 12);
    expect(fused[0].bbox[1]).toBeCloseTo(10, 12);
    expect(fused[0].bbox[2]).toBeCloseTo(20, 12);
    expect(fused[0].bbox[3]).toBeCloseTo(94 / 3 - 10, 12);
    expect(fused[1]).toEqual({ bbox: [100, 100, 10, 10], score: 1, members: [2] });
  });

  it('matches only strictly above the threshold, weighs by score, and visits high scores first', () => {
    // Two 10x10 boxes offset by 5 px in x: IoU = 50 / 150 = 1/3.
    const pair = [{ bbox: [0, 0, 10, 10] as const }, { bbox: [5, 0, 10, 10] as const }];
    expect(weightedBoxesFusion(pair, 1 / 3)).toHaveLength(2);
    expect(weightedBoxesFusion(pair, 0.33)).toHaveLength(1);
    const weighted = weightedBoxesFusion(
      [
        { bbox: [0, 0, 10, 10], score: 1 },
        { bbox: [2, 0, 10, 10], score: 3 },
      ],
      0.4,
    );
    expect(weighted[0].members).toEqual([1, 0]);
    expect(weighted[0].bbox[0]).toBeCloseTo(1.5, 12);
    expect(weighted[0].score).toBeCloseTo(2, 12);
    expect(() => weightedBoxesFusion(pair, 1.5)).toThrow(/\[0, 1\]/);
  });
});

describe('VinDr-CXR', () => {
  const header = 'image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max';
  const rows = [
    'img1,Aortic enlargement,0,R8,100,100,200,200',
    'img1,Aortic enlargement,0,R9,104,96,204,204',
    'img1,Aortic enlargement,0,R10,98,102,196,200',
    'img1,Cardiomegaly,3,R8,300,400,700,600',
    'img1,Cardiomegaly,3,R9,10,10,20,20', // a second, distinct finding of one reader
    'img2,No finding,14,R1,,,,',
    'img2,No finding,14,R2,,,,',
    'img3,Nodule/Mass,8,R1,50,50,60,60',
    'img3,No finding,14,R2,,,,',
    'img9,Nodule/Mass,8,R1,5,5,9,9', // no image
  ];

  async function vindrExport(name: string): Promise<string> {
    const root = join(scratch, name);
    await put(join(root, 'train.csv'), `${[header, ...rows].join('\n')}\n`);
    for (const id of ['img1', 'img2', 'img3']) await put(join(root, `train/${id}.dicom`), 'x');
    return root;
  }

  it("fuses the readers' boxes per class, keeps No-finding images as negatives, counts in and out", async () => {
    const source = await parseDatasetSource('vindr', await vindrExport('vindr'));
    expect(source.categories).toEqual(['Aortic enlargement', 'Cardiomegaly', 'Nodule/Mass']);
    const byId = new Map(source.items.map((i) => [i.path.split('/').pop(), i]));
    expect([...byId.keys()]).toEqual(['img1.dicom', 'img2.dicom', 'img3.dicom']);
    const img1 = byId.get('img1.dicom')?.boxes ?? [];
    expect(img1).toHaveLength(3);
    expect(img1[0].category).toBe('Aortic enlargement');
    // Mean corners: (100+104+98)/3, (100+96+102)/3, (200+204+196)/3, (200+204+200)/3.
    const [x, y, w, h] = img1[0].bbox;
    expect([x, y, x + w, y + h].map((v) => Number(v.toFixed(9)))).toEqual([
      Number((302 / 3).toFixed(9)),
      Number((298 / 3).toFixed(9)),
      200,
      Number((604 / 3).toFixed(9)),
    ]);
    expect(img1[0].attributes).toEqual({ fused_boxes: 3, readers: 3 });
    expect(img1.slice(1).map((b) => [b.category, b.bbox, b.attributes])).toEqual([
      ['Cardiomegaly', [300, 400, 400, 200], { fused_boxes: 1, readers: 1 }],
      ['Cardiomegaly', [10, 10, 10, 10], { fused_boxes: 1, readers: 1 }],
    ]);
    expect(byId.get('img2.dicom')?.boxes).toEqual([]);
    expect(byId.get('img3.dicom')?.boxes.map((b) => b.bbox)).toEqual([[50, 50, 10, 10]]);
    expect(source.notes).toEqual(["weighted boxes fusion at IoU 0.4: 6 readers' boxes in, 4 boxes out"]);
    expect(source.info).toMatchObject({ boxes_in: 6, boxes_out: 4, fusion_iou: 0.4 });
    expect(source.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/train\.csv:11: no image img9\.dicom in .*train; skipped/),
    ]);
  });

  it("--fusion none keeps every reader's box with its rad_id", async () => {
    const source = await parseDatasetSource('vindr', await vindrExport('vindr-none'), { fusion: 'none' });
    const img1 = source.items[0].boxes;
    expect(img1).toHaveLength(5);
    expect(img1.map((b) => b.attributes?.rad_id)).toEqual(['R8', 'R9', 'R10', 'R8', 'R9']);
    expect(img1[1].bbox).toEqual([104, 96, 100, 108]);
    expect(source.notes).toEqual(["readers' boxes kept as they are: 6 boxes (each with its rad_id)"]);
  });

  it('a higher fusion IoU keeps disagreeing readers apart', async () => {
    const source = await parseDatasetSource('vindr', await vindrExport('vindr-strict'), { fusionIou: 0.95 });
    expect(source.items[0].boxes.filter((b) => b.category === 'Aortic enlargement')).toHaveLength(3);
  });

  it('malformed rows are errors with file and line', () => {
    const bad = (row: string) => () => readVindrCsv(`${header}\n${row}\n`, 'train.csv');
    expect(bad('a,Nodule/Mass,8,R1,,,,')).toThrow(
      /train\.csv: line 2: "Nodule\/Mass" needs x_min, y_min, x_max and y_max/,
    );
    expect(bad('a,No finding,14,R1,1,2,3,4')).toThrow(/line 2: "No finding" row must have no box/);
    expect(bad('a,Nodule/Mass,8,R1,10,10,5,20')).toThrow(/line 2: empty box \(x_min 10, x_max 5/);
    expect(bad('a,Nodule/Mass,8,R1,1,2,3')).toThrow(/line 2: expected 8 fields/);
    expect(bad(',Nodule/Mass,8,R1,1,2,3,4')).toThrow(/line 2: empty image_id/);
    expect(() => readVindrCsv('image_id,class_name\n', 'train.csv')).toThrow(/line 1: missing column\(s\) "x_min"/);
    expect(() =>
      readVindrCsv(`${header}\na,Nodule/Mass,8,R1,1,1,3,4\nb,Nodule/Mass,9,R1,1,1,3,4\n`, 'train.csv'),
    ).toThrow(/line 3: class "Nodule\/Mass" has class_id 9 here and 8 before/);
  });

  it('a folder without labels says what a VinDr export holds', async () => {
    await expect(parseDatasetSource('vindr', join(scratch, 'nowhere'))).rejects.toThrow(
      /not a VinDr-CXR export: no train\.csv or annotations\/annotations_train\.csv/,
    );
  });
});

describe('NIH ChestX-ray14', () => {
  async function nihExport(name: string, withEntries = true): Promise<string> {
    const root = join(scratch, name);
    await put(
      join(root, 'BBox_List_2017.csv'),
      [
        'Image Index,Finding Label,Bbox [x,y,w,h],,,',
        '00000001_000.png,Cardiomegaly,225.5,547.25,86.75,79.125,,,',
        '00000001_000.png,Effusion,10,20,30,40,,,',
        '00000002_001.png,Nodule,100,100,20,20,,,',
        '00000099_000.png,Mass,1,1,5,5,,,', // no image
      ].join('\r\n'),
    );
    if (withEntries) {
      await put(
        join(root, 'Data_Entry_2017.csv'),
        [
          'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],',
          '00000001_000.png,Cardiomegaly|Effusion,0,1,58,M,PA,2682,2749,0.143,0.143',
          '00000002_001.png,Nodule,1,2,81,F,PA,2500,2048,0.171,0.171',
          '00000003_000.png,No Finding,0,3,74,F,PA,2500,2048,0.168,0.168',
          '00000004_000.png,Hernia,0,4,81,M,AP,2048,2500,0.171,0.171', // findings, no box: not a detection label
          '00000005_000.png,No Finding,0,5,60,M,PA,2048,2500,0.171,0.171', // not downloaded
          '00000006_000.png,No Finding,0,1,58,M,PA,2682,2749,0.143,0.143',
        ].join('\n'),
      );
    }
    await put(join(root, 'images_001/images/00000001_000.png'), maskPng(8, 8, []));
    await put(join(root, 'images_001/images/00000002_001.png'), maskPng(8, 8, []));
    await put(join(root, 'images_002/images/00000003_000.png'), maskPng(8, 8, []));
    await put(join(root, 'images_002/images/00000004_000.png'), maskPng(8, 8, []));
    await put(join(root, 'images/00000006_000.png'), maskPng(8, 8, []));
    return root;
  }

  it('boxes from the spilling header, No-Finding negatives, findings without boxes left out and counted', async () => {
    const source = await parseDatasetSource('nih', await nihExport('nih'));
    // Mass is a class of the label file although its one image is not here.
    expect(source.categories).toEqual(['Cardiomegaly', 'Effusion', 'Mass', 'Nodule']);
    const byName = new Map(source.items.map((i) => [i.path.split('/').pop(), i]));
    expect([...byName.keys()]).toEqual([
      '00000001_000.png',
      '00000002_001.png',
      '00000003_000.png',
      '00000006_000.png',
    ]);
    expect(byName.get('00000001_000.png')?.boxes).toEqual([
      { category: 'Cardiomegaly', bbox: [225.5, 547.25, 86.75, 79.125] },
      { category: 'Effusion', bbox: [10, 20, 30, 40] },
    ]);
    expect(byName.get('00000001_000.png')?.path).toMatch(/images_001\/images\/00000001_000\.png$/);
    expect(byName.get('00000003_000.png')?.boxes).toEqual([]);
    // Patient ID groups images: 00000006_000 belongs to patient 1, as its Data_Entry row says.
    expect(source.items.map((i) => i.patientId)).toEqual(['1', '2', '3', '1']);
    expect(source.notes).toEqual([
      '2 images with boxes (3 boxes), 2 "No Finding" images as negatives',
      '1 images with findings but no box: not detection labels, left out',
      '1 "No Finding" images listed but not present: left out',
    ]);
    expect(source.info).toEqual({ excluded_findings_without_box: 1, negatives: 2, negatives_absent: 1 });
    expect(source.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/BBox_List_2017\.csv:5: no image 00000099_000\.png under images\/; skipped/),
    ]);
  });

  it('without Data_Entry: patients from the file names, no negatives, one warning', async () => {
    const source = await parseDatasetSource('nih', await nihExport('nih-boxes-only', false));
    expect(source.items.map((i) => i.patientId)).toEqual(['00000001', '00000002']);
    expect(source.issues.map((i) => i.code)).toEqual(['missing_file', 'missing_file']);
    expect(formatIssue(source.issues[0])).toMatch(/Data_Entry_2017\.csv: no Data_Entry_2017\.csv: no negatives/);
  });

  it('malformed rows are errors with file and line', async () => {
    const root = join(scratch, 'nih-bad');
    const write = (rows: string[]) =>
      put(join(root, 'BBox_List_2017.csv'), ['Image Index,Finding Label,Bbox [x,y,w,h]', ...rows].join('\n'));
    await write(['a.png,Mass,1,2,x,4']);
    await expect(parseDatasetSource('nih', root)).rejects.toThrow(
      /BBox_List_2017\.csv: line 2: column "bbox_w" is not a number: "x"/,
    );
    await write(['a.png,Mass,1,2,3']);
    await expect(parseDatasetSource('nih', root)).rejects.toThrow(/line 2: box needs x, y, w and h/);
    await write(['a.png,Mass,1,2,0,4']);
    await expect(parseDatasetSource('nih', root)).rejects.toThrow(/line 2: box has zero or negative size \(0x4\)/);
    await write(['a.png,,1,2,3,4']);
    await expect(parseDatasetSource('nih', root)).rejects.toThrow(/line 2: empty Finding Label/);
    await put(join(root, 'BBox_List_2017.csv'), 'Image,Label,x,y,w,h\n');
    await expect(parseDatasetSource('nih', root)).rejects.toThrow(/line 1: missing column\(s\) "Image Index"/);
    await expect(parseDatasetSource('nih', join(scratch, 'nowhere'))).rejects.toThrow(/no BBox_List_2017\.csv/);
  });
});
