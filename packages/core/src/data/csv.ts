/**
 * A small RFC 4180 CSV reader for label files: quoted fields (with "" escapes and embedded commas or
 * newlines), CRLF or LF, an optional UTF-8 BOM. Every row remembers its 1-based line number so that
 * errors can say `train.csv:17: ...`.
 */
import { FedcxrError } from '@fedcxr/base';

export interface CsvRow {
  /** Line where the row starts (1-based; the header is line 1). */
  line: number;
  /** Field values by column name. */
  values: Record<string, string>;
}

export interface CsvTable {
  file: string;
  header: string[];
  rows: CsvRow[];
}

/** `file:line: message`, as a FedcxrError with code `invalid_labels`. */
export function labelError(file: string, line: number | undefined, message: string): FedcxrError {
  return new FedcxrError('invalid_labels', line === undefined ? message : `line ${line}: ${message}`, { file });
}

export interface CsvOptions {
  /**
   * Ignore empty fields at the end of the header and of rows (spreadsheet exports pad rows with `,,,`): a
   * row may then have more fields than the header as long as the extra ones are empty.
   */
  trailingEmpty?: boolean;
  /** Rewrites the header's names before rows are matched to it (a header whose one name spills over commas). */
  header?: (names: string[]) => string[];
}

/**
 * Parses CSV text with a header row. Columns named in `required` must be present; every row must have as
 * many fields as the header. Blank lines are skipped.
 */
export function parseCsv(
  text: string,
  file: string,
  required: readonly string[] = [],
  options: CsvOptions = {},
): CsvTable {
  const records = splitRecords(text.replace(/^\uFEFF/, ''), file);
  if (records.length === 0) throw labelError(file, undefined, 'empty file: expected a header row');
  if (options.trailingEmpty) {
    for (const record of records) {
      while (record.fields.length > 1 && record.fields[record.fields.length - 1].trim() === '') record.fields.pop();
    }
  }
  let header = records[0].fields.map((name) => name.trim());
  if (options.header) header = options.header(header);
  const missing = required.filter((name) => !header.includes(name));
  if (missing.length > 0) {
    throw labelError(
      file,
      records[0].line,
      `missing column(s) ${missing.map((m) => `"${m}"`).join(', ')}; header is "${header.join(',')}"`,
    );
  }
  const rows: CsvRow[] = [];
  for (const record of records.slice(1)) {
    if (record.fields.length === 1 && record.fields[0].trim() === '') continue;
    // Trailing empty fields were dropped: a row that ends in empty cells may now be short of the header.
    if (options.trailingEmpty) while (record.fields.length < header.length) record.fields.push('');
    if (record.fields.length !== header.length) {
      throw labelError(
        file,
        record.line,
        `expected ${header.length} fields (${header.join(',')}), found ${record.fields.length}`,
      );
    }
    const values: Record<string, string> = {};
    header.forEach((name, i) => {
      values[name] = record.fields[i].trim();
    });
    rows.push({ line: record.line, values });
  }
  return { file, header, rows };
}

/** A number field, or a clear error naming file, line and column. Empty fields are `null`. */
export function csvNumber(row: CsvRow, column: string, file: string): number | null {
  const raw = row.values[column] ?? '';
  if (raw === '') return null;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw labelError(file, row.line, `column "${column}" is not a number: "${raw}"`);
  return value;
}

function splitRecords(text: string, file: string): { line: number; fields: string[] }[] {
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let quoteStartLine = 1;
  let fieldStarted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"') {
      if (fieldStarted && field.trim() !== '') throw labelError(file, line, 'a quote inside an unquoted field');
      quoted = true;
      quoteStartLine = line;
      fieldStarted = true;
      field = '';
    } else if (ch === ',') {
      fields.push(field);
      field = '';
      fieldStarted = false;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      records.push({ line: recordLine, fields });
      fields = [];
      field = '';
      fieldStarted = false;
      line++;
      recordLine = line;
    } else {
      field += ch;
      fieldStarted = true;
    }
  }
  if (quoted) throw labelError(file, quoteStartLine, 'unterminated quoted field');
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    records.push({ line: recordLine, fields });
  }
  return records;
}
