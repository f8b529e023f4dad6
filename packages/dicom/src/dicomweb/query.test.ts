import { describe, expect, it } from 'vitest';
import { jsonString, jsonStrings, referencedInstances, TAGS } from './json.js';
import { dateRange, isDicomDate, resourceUrl, studySearchParameters, withQuery } from './query.js';
import { nonImageSopClass } from './sop-classes.js';

describe('QIDO-RS query building', () => {
  it('joins resource paths under the base URL, encoding segments', () => {
    expect(resourceUrl('http://pacs:8042/dicom-web/', 'studies', '1.2.3', 'series')).toBe(
      'http://pacs:8042/dicom-web/studies/1.2.3/series',
    );
    expect(resourceUrl('https://h/dw//', 'studies', 'a b/c')).toBe('https://h/dw/studies/a%20b%2Fc');
    expect(resourceUrl('https://h/dw')).toBe('https://h/dw');
  });

  it('writes study searches: modality, StudyDate range, includefield repeated, unset fields left out', () => {
    const url = withQuery(
      'http://h/dw/studies',
      studySearchParameters({ modality: 'CR', studyDateFrom: '20240101', includeFields: ['00080020', 'PatientAge'] }),
    );
    expect(url).toBe(
      'http://h/dw/studies?ModalitiesInStudy=CR&StudyDate=20240101-&includefield=00080020&includefield=PatientAge',
    );
    expect(withQuery('http://h/dw/studies', studySearchParameters({}))).toBe('http://h/dw/studies');
    expect(withQuery('http://h/x?a=1', { StudyInstanceUID: '1.2', limit: 10 })).toBe(
      'http://h/x?a=1&StudyInstanceUID=1.2&limit=10',
    );
  });

  it('date ranges and YYYYMMDD validation', () => {
    expect(dateRange('20240101', '20241231')).toBe('20240101-20241231');
    expect(dateRange(undefined, '20241231')).toBe('-20241231');
    expect(dateRange('20240229', '20240229')).toBe('20240229');
    expect(dateRange()).toBeUndefined();
    expect(isDicomDate('20240229')).toBe(true);
    expect(isDicomDate('20230229')).toBe(false);
    expect(isDicomDate('2024-01-01')).toBe(false);
    expect(() => dateRange('2024011')).toThrow(/YYYYMMDD/);
  });
});

describe('DICOM JSON readers', () => {
  const sr = {
    [TAGS.PatientName]: { vr: 'PN', Value: [{ Alphabetic: 'Doe^Jane' }] },
    [TAGS.ModalitiesInStudy]: { vr: 'CS', Value: ['CR', 'SR'] },
    [TAGS.AccessionNumber]: { vr: 'SH' },
    [TAGS.CurrentRequestedProcedureEvidenceSequence]: {
      vr: 'SQ',
      Value: [
        {
          [TAGS.ReferencedSeriesSequence]: {
            vr: 'SQ',
            Value: [
              {
                [TAGS.ReferencedSOPSequence]: {
                  vr: 'SQ',
                  Value: [
                    { [TAGS.ReferencedSOPInstanceUID]: { vr: 'UI', Value: ['1.2.3.4'] } },
                    { [TAGS.ReferencedSOPInstanceUID]: { vr: 'UI', Value: ['1.2.3.5'] } },
                  ],
                },
              },
            ],
          },
        },
      ],
    },
  };
  it('reads strings, person names, empty attributes and the evidence an SR references', () => {
    expect(jsonString(sr, TAGS.PatientName)).toBe('Doe^Jane');
    expect(jsonStrings(sr, TAGS.ModalitiesInStudy)).toEqual(['CR', 'SR']);
    expect(jsonString(sr, TAGS.AccessionNumber)).toBeUndefined();
    expect(jsonString(sr, TAGS.StudyDate)).toBeUndefined();
    expect(referencedInstances(sr)).toEqual(['1.2.3.4', '1.2.3.5']);
  });

  it('tells non-image SOP classes from images', () => {
    expect(nonImageSopClass('1.2.840.10008.5.1.4.1.1.88.33')).toMatch(/structured report/);
    expect(nonImageSopClass('1.2.840.10008.5.1.4.1.1.104.1')).toBe('encapsulated document');
    expect(nonImageSopClass('1.2.840.10008.5.1.4.1.1.11.1')).toBe('presentation state');
    expect(nonImageSopClass('1.2.840.10008.5.1.4.1.1.1')).toBeNull(); // CR
    expect(nonImageSopClass('1.2.840.10008.5.1.4.1.1.1.1')).toBeNull(); // DX
    expect(nonImageSopClass('1.2.840.10008.5.1.4.1.1.481.1')).toBeNull(); // RT image
    expect(nonImageSopClass(undefined)).toBeNull();
  });
});
