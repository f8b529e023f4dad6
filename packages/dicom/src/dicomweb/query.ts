/**
 * QIDO-RS / WADO-RS / STOW-RS URLs (PS3.18 10.4–10.6): resource paths under the service's base URL and QIDO
 * query parameters (attribute matching, date ranges, includefield, limit/offset).
 */

/** `base` + `/seg/seg…`, each segment percent-encoded; trailing slashes of the base are dropped. */
export function resourceUrl(base: string, ...segments: string[]): string {
  const root = base.replace(/\/+$/, '');
  return segments.length ? `${root}/${segments.map(encodeURIComponent).join('/')}` : root;
}

export type QueryParameters = Record<string, string | number | readonly string[] | undefined>;

/** A URL with its query string; array values repeat the key (as includefield does), undefined ones are left out. */
export function withQuery(url: string, parameters: QueryParameters): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(parameters)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) query.append(key, item);
    else query.append(key, String(value));
  }
  const text = query.toString();
  return text ? `${url}${url.includes('?') ? '&' : '?'}${text}` : url;
}

/** True for a valid calendar date written YYYYMMDD (the DICOM DA format). */
export function isDicomDate(text: string): boolean {
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** A DA range matching value (PS3.4 C.2.2.2.5): `from-to`, `from-` or `-to`; undefined when both are open. */
export function dateRange(from?: string, to?: string): string | undefined {
  for (const value of [from, to]) {
    if (value !== undefined && !isDicomDate(value)) throw new RangeError(`not a YYYYMMDD date: ${value}`);
  }
  if (!from && !to) return undefined;
  if (from && to && from === to) return from;
  return `${from ?? ''}-${to ?? ''}`;
}

/** What to look for at the study level. Unset fields do not restrict. */
export interface StudySearch {
  studyInstanceUid?: string;
  /** One modality matched against ModalitiesInStudy (query once per modality for several). */
  modality?: string;
  /** StudyDate range, YYYYMMDD, both ends inclusive. */
  studyDateFrom?: string;
  studyDateTo?: string;
  patientId?: string;
  /** Extra attributes to return (keywords or tags); `all` for every one the server has. */
  includeFields?: readonly string[];
  limit?: number;
  offset?: number;
}

/** The QIDO-RS query parameters of a study search. */
export function studySearchParameters(search: StudySearch): QueryParameters {
  return {
    StudyInstanceUID: search.studyInstanceUid,
    ModalitiesInStudy: search.modality,
    StudyDate: dateRange(search.studyDateFrom, search.studyDateTo),
    PatientID: search.patientId,
    includefield: search.includeFields?.length ? search.includeFields : undefined,
    limit: search.limit,
    offset: search.offset,
  };
}
