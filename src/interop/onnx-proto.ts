// The part of ONNX's protobuf schema (onnx.proto, IR version 8) that the importer reads and the exporter writes,
// described with protobufjs's reflection API: message names, field names and field numbers as in the schema. Fields
// left out are skipped by the decoder; sparse initializers, functions and training info are not read.
import protobuf from 'protobufjs/light.js';

const f = (id: number, type: string, rule?: 'repeated') => ({ id, type, ...(rule ? { rule } : {}) });

const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            ir_version: f(1, 'int64'),
            producer_name: f(2, 'string'),
            graph: f(7, 'GraphProto'),
            opset_import: f(8, 'OperatorSetIdProto', 'repeated'),
          },
        },
        OperatorSetIdProto: { fields: { domain: f(1, 'string'), version: f(2, 'int64') } },
        GraphProto: {
          fields: {
            node: f(1, 'NodeProto', 'repeated'),
            name: f(2, 'string'),
            initializer: f(5, 'TensorProto', 'repeated'),
            input: f(11, 'ValueInfoProto', 'repeated'),
            output: f(12, 'ValueInfoProto', 'repeated'),
          },
        },
        NodeProto: {
          fields: {
            input: f(1, 'string', 'repeated'),
            output: f(2, 'string', 'repeated'),
            name: f(3, 'string'),
            op_type: f(4, 'string'),
            attribute: f(5, 'AttributeProto', 'repeated'),
            domain: f(7, 'string'),
          },
        },
        AttributeProto: {
          fields: {
            name: f(1, 'string'),
            f: f(2, 'float'),
            i: f(3, 'int64'),
            s: f(4, 'bytes'),
            t: f(5, 'TensorProto'),
            floats: f(7, 'float', 'repeated'),
            ints: f(8, 'int64', 'repeated'),
            type: f(20, 'int32'),
          },
        },
        TensorProto: {
          fields: {
            dims: f(1, 'int64', 'repeated'),
            data_type: f(2, 'int32'),
            float_data: f(4, 'float', 'repeated'),
            int32_data: f(5, 'int32', 'repeated'),
            int64_data: f(7, 'int64', 'repeated'),
            name: f(8, 'string'),
            raw_data: f(9, 'bytes'),
            double_data: f(10, 'double', 'repeated'),
            external_data: f(13, 'StringStringEntryProto', 'repeated'),
            data_location: f(14, 'int32'),
          },
        },
        StringStringEntryProto: { fields: { key: f(1, 'string'), value: f(2, 'string') } },
        ValueInfoProto: { fields: { name: f(1, 'string'), type: f(2, 'TypeProto') } },
        TypeProto: {
          fields: { tensor_type: f(1, 'TypeProtoTensor') },
        },
        TypeProtoTensor: { fields: { elem_type: f(1, 'int32'), shape: f(2, 'TensorShapeProto') } },
        TensorShapeProto: { fields: { dim: f(1, 'Dimension', 'repeated') } },
        Dimension: { fields: { dim_value: f(1, 'int64'), dim_param: f(2, 'string') } },
      },
    },
  },
};

/** An int64 as protobufjs decodes it: a number, or a Long when the `long` package is present. */
export type Int64 = number | { toNumber(): number };

export interface TensorMsg {
  dims: Int64[];
  data_type: number;
  float_data: number[];
  int32_data: number[];
  int64_data: Int64[];
  double_data: number[];
  name: string;
  raw_data: Uint8Array;
  external_data: unknown[];
  data_location: number;
}
export interface AttributeMsg {
  name: string;
  type: number;
  f: number;
  i: Int64;
  s: Uint8Array;
  t: TensorMsg | null;
  floats: number[];
  ints: Int64[];
}
export interface NodeMsg {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain: string;
  attribute: AttributeMsg[];
}
export interface ValueInfoMsg {
  name: string;
  type: {
    tensor_type: { elem_type: number; shape: { dim: { dim_value: Int64; dim_param: string }[] } | null } | null;
  } | null;
}
export interface GraphMsg {
  node: NodeMsg[];
  name: string;
  initializer: TensorMsg[];
  input: ValueInfoMsg[];
  output: ValueInfoMsg[];
}
export interface ModelMsg {
  ir_version: Int64;
  producer_name: string;
  graph: GraphMsg | null;
  opset_import: { domain: string; version: Int64 }[];
}

let model: protobuf.Type | undefined;
const modelType = () => (model ??= protobuf.Root.fromJSON(SCHEMA).lookupType('onnx.ModelProto'));

/** The decoded ModelProto, with defaults for missing fields; throws what protobufjs throws on malformed bytes. */
export function decodeModel(bytes: Uint8Array): ModelMsg {
  const m = modelType().decode(bytes);
  return modelType().toObject(m, { defaults: true, arrays: true }) as unknown as ModelMsg;
}

/** A ModelProto's bytes from a plain object with the schema's field names (int64 fields as numbers). */
export function encodeModel(obj: Record<string, unknown>): Uint8Array {
  const t = modelType();
  return t.encode(t.fromObject(obj)).finish();
}
