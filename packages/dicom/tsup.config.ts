import { defineConfig } from 'tsup';

export default defineConfig({
  // The conversion worker is its own entry: convertBatch starts it from dist/ as a worker thread. The DICOMweb
  // client is one too (`@fedcxr/dicom/dicomweb`), so it loads on its own, without the DICOM reader and codecs.
  entry: ['src/index.ts', 'src/convert-worker.ts', 'src/dicomweb/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node24',
});
