/**
 * A minimal ONNX (onnx.proto3) writer: just the messages a feed-forward graph needs, encoded as protobuf
 * wire format by hand so no protobuf runtime or schema compiler is required.
 */

/** ONNX TensorProto.DataType values used here. */
export const OnnxDataType = { FLOAT: 1, INT32: 6, INT64: 7 } as const;
export type OnnxDataTypeValue = (typeof OnnxDataType)[keyof typeof OnnxDataType];

export type AttributeValue =
  | number
  | string
  | number[]
  | { ints: number[] }
  | { floats: number[] }
  | { int: number }
  | InitializerTensor;

export interface InitializerTensor {
  name: string;
  dims: number[];
  dataType: OnnxDataTypeValue;
  /** Raw little-endian bytes of the values. */
  raw: Uint8Array;
}

export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface OnnxValueInfo {
  name: string;
  dataType: OnnxDataTypeValue;
  /** A number is a fixed size; a string a symbolic dimension (e.g. 'height'). */
  shape: (number | string)[];
}

export interface OnnxModel {
  graphName: string;
  nodes: OnnxNode[];
  initializers: InitializerTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  opset: number;
  producer?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

class Writer {
  private chunks: number[] = [];

  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.chunks.push(Number((v & 0x7fn) | 0x80n));
      v >>= 7n;
    }
    this.chunks.push(Number(v));
    return this;
  }

  tag(field: number, wire: 0 | 1 | 2 | 5): this {
    return this.varint((field << 3) | wire);
  }

  int(field: number, value: number): this {
    return this.tag(field, 0).varint(value);
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2).varint(value.length);
    for (const b of value) this.chunks.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  float(field: number, value: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    for (const x of b) this.chunks.push(x);
    return this;
  }

  /** Writes a large byte payload without going through the number array. */
  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

function writeTensor(w: Writer, t: InitializerTensor): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, t.raw);
}

function writeAttribute(w: Writer, name: string, value: AttributeValue): void {
  w.string(1, name);
  if (typeof value === 'number') {
    w.float(2, value).int(20, 1);
  } else if (typeof value === 'string') {
    w.bytes(4, new TextEncoder().encode(value)).int(20, 3);
  } else if (Array.isArray(value)) {
    for (const v of value) w.int(8, v);
    w.int(20, 7);
  } else if ('ints' in value) {
    for (const v of value.ints) w.int(8, v);
    w.int(20, 7);
  } else if ('floats' in value) {
    for (const v of value.floats) w.float(7, v);
    w.int(20, 6);
  } else if ('int' in value) {
    w.int(3, value.int).int(20, 2);
  } else {
    w.message(5, (t) => writeTensor(t, value)).int(20, 4);
  }
}

function writeValueInfo(w: Writer, info: OnnxValueInfo): void {
  w.string(1, info.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, info.dataType);
      tensor.message(2, (shape) => {
        for (const d of info.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

/**
 * Serializes a model. Initializer payloads can be large (a ResNet-50-FPN is ~160 MB), so the graph is
 * assembled from separately encoded parts and concatenated once.
 */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const parts: Uint8Array[] = [];
  const graphHeader = new Writer();
  for (const node of model.nodes) {
    graphHeader.message(1, (n) => {
      for (const i of node.inputs) n.string(1, i);
      for (const o of node.outputs) n.string(2, o);
      if (node.name) n.string(3, node.name);
      n.string(4, node.opType);
      for (const [key, value] of Object.entries(node.attributes ?? {}))
        n.message(5, (a) => writeAttribute(a, key, value));
    });
  }
  graphHeader.string(2, model.graphName);
  parts.push(graphHeader.finish());
  for (const init of model.initializers) {
    const header = new Writer();
    for (const d of init.dims) header.int(1, d);
    header.int(2, init.dataType).string(8, init.name).tag(9, 2).varint(init.raw.length);
    const head = header.finish();
    const body = new Writer()
      .tag(5, 2)
      .varint(head.length + init.raw.length)
      .finish();
    parts.push(body, head, init.raw);
  }
  const tail = new Writer();
  for (const input of model.inputs) tail.message(11, (v) => writeValueInfo(v, input));
  for (const output of model.outputs) tail.message(12, (v) => writeValueInfo(v, output));
  parts.push(tail.finish());
  const graphLength = parts.reduce((n, p) => n + p.length, 0);

  const head = new Writer().int(1, 8);
  head.string(2, model.producer ?? 'fedcxr');
  if (model.docString) head.string(6, model.docString);
  head.tag(7, 2).varint(graphLength);
  const modelTail = new Writer();
  modelTail.message(8, (o) => o.string(1, '').int(2, model.opset));
  for (const [key, value] of Object.entries(model.metadata ?? {}))
    modelTail.message(14, (m) => m.string(1, key).string(2, value));
  const all = [head.finish(), ...parts, modelTail.finish()];
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of all) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** An initializer from float32 values. */
export function floatInitializer(name: string, dims: number[], values: Float32Array): InitializerTensor {
  return {
    name,
    dims,
    dataType: OnnxDataType.FLOAT,
    raw: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice(),
  };
}

/** An initializer from int64 values (shapes, axes, pads). */
export function int64Initializer(name: string, values: number[]): InitializerTensor {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => {
    view.setBigInt64(i * 8, BigInt(v), true);
  });
  return { name, dims: [values.length], dataType: OnnxDataType.INT64, raw };
}
