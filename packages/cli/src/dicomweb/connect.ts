/**
 * The options every DICOMweb-reading command shares (`--dicomweb <url>`, what to select, how to authenticate
 * and trust the server), turned into a client and a selection; and DICOMweb errors turned into the CLI's
 * errors, with the hint a person needs (which flag to give).
 */
import { readFileSync } from 'node:fs';
import { FedcxrError } from '@fedcxr/core';
import { DicomwebClient, DicomwebError, isDicomDate } from '@fedcxr/dicom';
import type { Command } from 'commander';

/** Environment variables read when the flags are not given. */
export const DICOMWEB_ENV = {
  user: 'CXR_DICOMWEB_USER',
  token: 'CXR_DICOMWEB_TOKEN',
} as const;

export interface DicomwebFlags {
  dicomweb?: string;
  study?: string[];
  modality?: string;
  since?: string;
  until?: string;
  user?: string;
  token?: string;
  ca?: string;
  insecure?: boolean;
}

/** What to take from the server. */
export interface DicomwebSelection {
  studies: string[];
  modalities: string[];
  since?: string;
  until?: string;
}

const collect = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

/** Adds --dicomweb and its companions to a command. */
export function withDicomwebOptions(command: Command, what: string): Command {
  return command
    .option(
      '--dicomweb <base-url>',
      `${what} from a PACS through DICOMweb (QIDO-RS / WADO-RS), e.g. http://pacs:8042/dicom-web`,
    )
    .option('--study <uid>', 'DICOMweb: this study (repeat the flag, or give a comma list)', collect)
    .option('--modality <list>', 'DICOMweb: studies with these modalities, and only their series of them (e.g. CR,DX)')
    .option('--since <YYYYMMDD>', 'DICOMweb: studies from this date on (StudyDate)')
    .option('--until <YYYYMMDD>', 'DICOMweb: studies up to this date')
    .option('--user <name:password>', `DICOMweb: HTTP basic authentication (or $${DICOMWEB_ENV.user})`)
    .option('--token <token>', `DICOMweb: bearer token (or $${DICOMWEB_ENV.token})`)
    .option('--ca <pem>', 'DICOMweb: trust the CA certificate(s) in this PEM file')
    .option('--insecure', "DICOMweb: do not check the server's TLS certificate");
}

/** True when any DICOMweb-only flag was given without --dicomweb (a mistake worth saying). */
export function strayDicomwebFlag(flags: DicomwebFlags): string | null {
  if (flags.dicomweb) return null;
  const named: [keyof DicomwebFlags, string][] = [
    ['study', '--study'],
    ['modality', '--modality'],
    ['since', '--since'],
    ['until', '--until'],
    ['user', '--user'],
    ['token', '--token'],
    ['ca', '--ca'],
    ['insecure', '--insecure'],
  ];
  return named.find(([key]) => flags[key] !== undefined)?.[1] ?? null;
}

export function selectionFromFlags(flags: DicomwebFlags): DicomwebSelection {
  for (const [flag, value] of [
    ['--since', flags.since],
    ['--until', flags.until],
  ] as const) {
    if (value !== undefined && !isDicomDate(value)) {
      throw new FedcxrError('usage', `${flag} must be a date written YYYYMMDD, got "${value}"`);
    }
  }
  const modalities = collect(flags.modality ?? '').map((m) => m.toUpperCase());
  const studies = flags.study ?? [];
  if (studies.length === 0 && modalities.length === 0 && !flags.since && !flags.until) {
    throw new FedcxrError(
      'usage',
      '--dicomweb needs --study, --modality, --since or --until (it does not walk the whole PACS unasked)',
    );
  }
  return { studies, modalities, since: flags.since, until: flags.until };
}

/** A client for --dicomweb with the credentials and TLS trust the flags (or the environment) give. */
export function clientFromFlags(flags: DicomwebFlags): DicomwebClient {
  const baseUrl = flags.dicomweb ?? '';
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new FedcxrError('usage', `--dicomweb must be an http:// or https:// URL, got "${baseUrl}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FedcxrError('usage', `--dicomweb must be an http:// or https:// URL, got "${baseUrl}"`);
  }
  if (url.username || url.password) {
    throw new FedcxrError('usage', '--dicomweb: put credentials in --user or $CXR_DICOMWEB_USER, not in the URL');
  }
  const userFlag = flags.user ?? process.env[DICOMWEB_ENV.user];
  const token = flags.token ?? process.env[DICOMWEB_ENV.token];
  let user: string | undefined;
  let password: string | undefined;
  if (userFlag !== undefined && userFlag !== '') {
    const colon = userFlag.indexOf(':');
    if (colon <= 0) {
      throw new FedcxrError('usage', `--user (or $${DICOMWEB_ENV.user}) must be name:password`);
    }
    user = userFlag.slice(0, colon);
    password = userFlag.slice(colon + 1);
  }
  let ca: string | undefined;
  if (flags.ca !== undefined) {
    try {
      ca = readFileSync(flags.ca, 'utf8');
    } catch (error) {
      throw new FedcxrError('usage', `--ca: cannot read the PEM file: ${(error as Error).message}`, { file: flags.ca });
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new FedcxrError('usage', '--ca: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file', {
        file: flags.ca,
      });
    }
  }
  return new DicomwebClient({ baseUrl, user, password, token: token || undefined, ca, insecure: flags.insecure });
}

/** A DICOMweb error as the CLI's error, with what to do about it. Anything else is returned unchanged. */
export function explainDicomwebError(thrown: unknown, credentialsGiven: boolean): unknown {
  if (!(thrown instanceof DicomwebError)) return thrown;
  let hint = '';
  if (thrown.code === 'dicomweb_auth' && thrown.status === 401) {
    hint = credentialsGiven
      ? ': the server refused the credentials given (check --user name:password or --token)'
      : `: give --user name:password (or $${DICOMWEB_ENV.user}) or --token (or $${DICOMWEB_ENV.token})`;
  } else if (thrown.code === 'dicomweb_tls') {
    hint = " (give the server's CA with --ca <pem>, or --insecure to skip the check)";
  }
  return new FedcxrError(thrown.code, `${thrown.message}${hint}`, { cause: thrown });
}

/** Whether the flags (or environment) carry credentials. */
export function credentialsGiven(flags: DicomwebFlags): boolean {
  return Boolean(flags.user || flags.token || process.env[DICOMWEB_ENV.user] || process.env[DICOMWEB_ENV.token]);
}
