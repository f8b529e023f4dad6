/**
 * Receiving an update: its manifest is checked against the global model before a byte is accepted, then each
 * chunk is decoded and spooled to disk as float32 while its finiteness, L2 norm and sha256 are checked
 * (UpdateIngest), or, under secure aggregation, spooled raw (MaskedIngest). Nothing reaches an aggregator
 * before it is fully validated.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { FedcxrError } from '@fedcxr/core';
import { encodedByteLength, StreamingUpdateDecoder, type TensorSpec, type UpdateBegin } from '@fedcxr/federated';

export class UpdateRejected extends FedcxrError {}

export function reject(code: string, message: string): UpdateRejected {
  return new UpdateRejected(code, message);
}

/** Checks an update's manifest against the global model before a single byte is accepted. */
export function validateManifest(begin: UpdateBegin, specs: readonly TensorSpec[], allowed: readonly string[]): void {
  if (begin.tensors.length !== specs.length)
    throw reject('manifest', `update has ${begin.tensors.length} tensors, the model has ${specs.length}`);
  begin.tensors.forEach((t, i) => {
    const spec = specs[i];
    if (t.name !== spec.name) throw reject('manifest', `tensor ${i} is ${t.name}, expected ${spec.name}`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, k) => d !== spec.shape[k]))
      throw reject('manifest', `tensor ${t.name} has shape [${t.shape}], expected [${spec.shape}]`);
    if (!allowed.includes(t.encoding)) throw reject('manifest', `tensor ${t.name}: encoding ${t.encoding} not allowed`);
    if (t.encoding === 'int8' && t.scale === undefined)
      throw reject('manifest', `tensor ${t.name}: int8 without a scale`);
  });
  const expected = encodedByteLength(begin.tensors);
  if (begin.byteLength !== expected)
    throw reject('size', `update announces ${begin.byteLength} bytes, its tensors need ${expected}`);
}

export interface IngestResult {
  norm: number;
  /** sha256 of the encoded bytes as received (= the site's declared hash). */
  sha256: string;
  /** sha256 of the spooled float32 values (checked again before a resumed round re-reads them). */
  spoolSha256: string;
}

/** What the coordinator needs of an update being received. */
export interface Ingest {
  readonly begin: UpdateBegin;
  readonly spoolPath: string;
  readonly bytesReceived: number;
  push(index: number, data: Uint8Array): void;
  finish(normBound: number): IngestResult;
  close(): void;
}

/**
 * What every update receiver checks and keeps: chunks in order, each within the size limit, the total within
 * the announced length, the sha256 of the bytes as received, and the spool file they go to. Subclasses say
 * what a chunk's bytes become (`consume`) and what a finished update must satisfy (`finish`).
 */
abstract class ChunkedIngest implements Ingest {
  protected readonly fd: number;
  private readonly hash = createHash('sha256');
  protected received = 0;
  private nextIndex = 0;
  private closed = false;

  constructor(
    readonly begin: UpdateBegin,
    readonly spoolPath: string,
    private readonly maxChunkBytes: number,
  ) {
    this.fd = openSync(spoolPath, 'w', 0o600);
  }

  get bytesReceived(): number {
    return this.received;
  }

  push(index: number, data: Uint8Array): void {
    if (this.closed) throw reject('closed', 'update already finished');
    if (index !== this.nextIndex)
      throw reject('chunk_order', `chunk ${index} out of order (expected ${this.nextIndex})`);
    if (data.length > this.maxChunkBytes)
      throw reject('chunk_size', `chunk of ${data.length} bytes > ${this.maxChunkBytes}`);
    if (this.received + data.length > this.begin.byteLength)
      throw reject('size', `update exceeds its announced ${this.begin.byteLength} bytes`);
    this.consume(data);
    this.nextIndex++;
    this.received += data.length;
    this.hash.update(data);
  }

  /** Handles one accepted chunk (before `received` counts it). */
  protected abstract consume(data: Uint8Array): void;

  abstract finish(normBound: number): IngestResult;

  /** Closes the spool and checks the length (plus `complete`) and the declared sha256; returns the hash. */
  protected checkWhole(complete = true): string {
    this.close();
    if (this.received !== this.begin.byteLength || !complete)
      throw reject('size', `update ended after ${this.received} of ${this.begin.byteLength} bytes`);
    const sha256 = this.hash.digest('hex');
    if (sha256 !== this.begin.sha256)
      throw reject('hash', `update bytes hash to ${sha256}, site declared ${this.begin.sha256}`);
    return sha256;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/**
 * Receives a masked (secure-aggregation) update: its values are uniformly random on their own, so only
 * sizes, order and the sha256 can be checked; the raw uint32 bytes are spooled for the modular sum.
 */
export class MaskedIngest extends ChunkedIngest {
  protected consume(data: Uint8Array): void {
    writeSync(this.fd, data, 0, data.length, this.received);
  }

  finish(): IngestResult {
    const sha256 = this.checkWhole();
    return { norm: 0, sha256, spoolSha256: sha256 };
  }
}

/** Receives one update's chunks: decodes, validates (finite), measures its norm, spools float32 values. */
export class UpdateIngest extends ChunkedIngest {
  private readonly spoolHash = createHash('sha256');
  private readonly decoder: StreamingUpdateDecoder;
  private sumSquares = 0;

  constructor(begin: UpdateBegin, spoolPath: string, maxChunkBytes: number) {
    super(begin, spoolPath, maxChunkBytes);
    this.decoder = new StreamingUpdateDecoder(begin.tensors, (offset, values) => {
      let sum = 0;
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (!Number.isFinite(v)) throw reject('not_finite', `value ${offset + i} is not finite`);
        sum += v * v;
      }
      this.sumSquares += sum;
      const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      this.spoolHash.update(bytes);
      writeSync(this.fd, bytes, 0, bytes.length, offset * 4);
    });
  }

  protected consume(data: Uint8Array): void {
    this.decoder.push(data);
  }

  finish(normBound: number): IngestResult {
    const sha256 = this.checkWhole(this.decoder.done);
    const norm = Math.sqrt(this.sumSquares);
    if (!(norm <= normBound))
      throw reject('norm', `update L2 norm ${norm.toPrecision(4)} exceeds the bound ${normBound}`);
    return { norm, sha256, spoolSha256: this.spoolHash.digest('hex') };
  }
}
