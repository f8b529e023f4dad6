/**
 * Which SOP classes carry no image to run a detector on (PS3.4 B.5): structured reports, documents,
 * presentation states, waveforms, raw data and the like. Classes not listed are treated as images (and the
 * reader says otherwise if they have no pixel data).
 */
const NON_IMAGE_PREFIXES: [prefix: string, kind: string][] = [
  ['1.2.840.10008.5.1.4.1.1.88.', 'structured report or key object selection'],
  ['1.2.840.10008.5.1.4.1.1.104.', 'encapsulated document'],
  ['1.2.840.10008.5.1.4.1.1.11.', 'presentation state'],
  ['1.2.840.10008.5.1.4.1.1.9.', 'waveform'],
  ['1.2.840.10008.5.1.4.1.1.66', 'raw data, registration or segmentation'],
  ['1.2.840.10008.5.1.4.1.1.67', 'real world value mapping'],
  ['1.2.840.10008.5.1.4.1.1.481.2', 'RT dose'],
  ['1.2.840.10008.5.1.4.1.1.481.3', 'RT structure set'],
  ['1.2.840.10008.5.1.4.1.1.481.4', 'RT treatment record'],
  ['1.2.840.10008.5.1.4.1.1.481.5', 'RT plan'],
  ['1.2.840.10008.5.1.4.1.1.481.6', 'RT treatment record'],
  ['1.2.840.10008.5.1.4.1.1.481.7', 'RT treatment record'],
  ['1.2.840.10008.5.1.4.1.1.481.8', 'RT plan'],
  ['1.2.840.10008.5.1.4.1.1.481.9', 'RT treatment record'],
  ['1.2.840.10008.5.1.4.38.', 'hanging protocol'],
  ['1.2.840.10008.5.1.4.39.', 'color palette'],
];

/** What kind of non-image object the SOP class is, or null for (presumed) images and unknown classes. */
export function nonImageSopClass(sopClassUid: string | undefined): string | null {
  if (!sopClassUid) return null;
  for (const [prefix, kind] of NON_IMAGE_PREFIXES) if (sopClassUid.startsWith(prefix)) return kind;
  return null;
}
