import koffi from 'koffi';

/**
 * C structs and unions declared once, as koffi types. The koffi type is what prototypes name
 * (koffi converts single struct arguments itself) and what sizes and offsets come from
 * (koffi.sizeof / koffi.offsetof). For arrays of structs that a call fills in many times a
 * second (field values, processes, utilization samples), the binding reads a reused Buffer
 * through `read`/`write`: one accessor per numeric member, at the offset and with the width
 * koffi gives the member. koffi.decode of the same array builds a JS object per element and
 * is about 30 times slower (10 field values: ~38 us against ~0.2 us).
 */

/** Member types read as JS numbers. */
type NumberMember = 'int8' | 'uint8' | 'int16' | 'uint16' | 'unsigned short' | 'int' | 'int32' | 'unsigned int' | 'uint32' | 'double';
/** Member types read as bigints (LP64: `unsigned long` is 8 bytes, which the check below holds koffi to). */
type BigIntMember = 'int64' | 'long long' | 'uint64' | 'unsigned long' | 'unsigned long long';
/** A member: a scalar type name, another type name (a pointer type such as 'nvmlDevice_t'), a koffi type (an array) or a declared struct/union. */
export type MemberType = NumberMember | BigIntMember | (string & {}) | koffi.IKoffiCType | DeclaredType;
export type Members = Readonly<Record<string, MemberType>>;

type Scalar<T> = T extends BigIntMember ? bigint : T extends NumberMember ? number : never;
type PointerValue = unknown;
/** Members that have a reader: the scalar ones. */
type ScalarKeys<M extends Members> = { [K in keyof M]: Scalar<M[K]> extends never ? never : K }[keyof M];

/** What a declared struct or union is as a member of another. */
export interface DeclaredType {
  readonly name: string;
  readonly type: koffi.IKoffiCType;
  /** koffi.sizeof(type) */
  readonly size: number;
}

export interface CType<M extends Members> extends DeclaredType {
  /** koffi.offsetof(type, member) of every member (0 for each member of a union). */
  readonly offset: { readonly [K in keyof M]: number };
  /** Reads a scalar member of the struct that starts at byte `at` of `buf`. */
  readonly read: { readonly [K in ScalarKeys<M>]: (buf: Buffer, at: number) => Scalar<M[K]> };
  /** Writes a scalar member of the struct that starts at byte `at` of `buf`. */
  readonly write: { readonly [K in ScalarKeys<M>]: (buf: Buffer, at: number, value: Scalar<M[K]>) => void };
  /** Writes a pointer member (an opaque handle koffi gave out) of the struct at byte `at`. */
  readonly writePointer: (member: keyof M, buf: Buffer, at: number, value: PointerValue) => void;
}

/** The koffi primitive each scalar type name must come out as (an ABI other than LP64 would fail here, at load). */
const SCALAR_PRIMITIVES: Record<NumberMember | BigIntMember, string> = {
  int8: 'Int8',
  uint8: 'UInt8',
  int16: 'Int16',
  uint16: 'UInt16',
  'unsigned short': 'UInt16',
  int: 'Int32',
  int32: 'Int32',
  'unsigned int': 'UInt32',
  uint32: 'UInt32',
  double: 'Float64',
  int64: 'Int64',
  'long long': 'Int64',
  uint64: 'UInt64',
  'unsigned long': 'UInt64',
  'unsigned long long': 'UInt64',
};

type Reader = (buf: Buffer, at: number) => number | bigint;
type Writer = (buf: Buffer, at: number, value: never) => void;

const VIEW = Symbol('dataView');
type Viewed = Buffer & { [VIEW]?: DataView };

/**
 * A DataView over a Buffer, kept on the Buffer (the binding reuses its buffers). DataView's
 * accessors are V8 builtins, quick in every tier; Buffer's readUInt32LE and the like are
 * JavaScript with argument checks, 3-5 times slower in the interpreter tiers the exporter runs
 * in (--no-turbofan). Both throw a RangeError past the end.
 */
function view(b: Buffer): DataView {
  return ((b as Viewed)[VIEW] ??= new DataView(b.buffer, b.byteOffset, b.byteLength));
}

/** Little-endian accessors (x86-64 and aarch64 Linux) at a fixed offset, by koffi primitive kind. */
function accessors(primitive: string, off: number): [Reader, Writer] | undefined {
  switch (primitive) {
    case 'Int8':
      return [(b, at) => view(b).getInt8(at + off), (b, at, v: number) => view(b).setInt8(at + off, v)];
    case 'UInt8':
      return [(b, at) => view(b).getUint8(at + off), (b, at, v: number) => view(b).setUint8(at + off, v)];
    case 'Int16':
      return [(b, at) => view(b).getInt16(at + off, true), (b, at, v: number) => view(b).setInt16(at + off, v, true)];
    case 'UInt16':
      return [(b, at) => view(b).getUint16(at + off, true), (b, at, v: number) => view(b).setUint16(at + off, v, true)];
    case 'Int32':
      return [(b, at) => view(b).getInt32(at + off, true), (b, at, v: number) => view(b).setInt32(at + off, v, true)];
    case 'UInt32':
      return [(b, at) => view(b).getUint32(at + off, true), (b, at, v: number) => view(b).setUint32(at + off, v, true)];
    case 'Int64':
      return [(b, at) => view(b).getBigInt64(at + off, true), (b, at, v: bigint) => view(b).setBigInt64(at + off, v, true)];
    case 'UInt64':
      return [(b, at) => view(b).getBigUint64(at + off, true), (b, at, v: bigint) => view(b).setBigUint64(at + off, v, true)];
    case 'Float64':
      return [(b, at) => view(b).getFloat64(at + off, true), (b, at, v: number) => view(b).setFloat64(at + off, v, true)];
    default:
      return undefined;
  }
}

function koffiTypeOf(t: MemberType): koffi.IKoffiCType | string {
  return typeof t === 'object' && 'type' in t && 'size' in t ? (t as DeclaredType).type : (t as koffi.IKoffiCType | string);
}

function declare<const M extends Members>(kind: 'struct' | 'union', name: string, members: M): CType<M> {
  const def = Object.fromEntries(Object.entries(members).map(([k, t]) => [k, koffiTypeOf(t)]));
  const type = kind === 'struct' ? koffi.struct(name, def) : koffi.union(name, def);
  const info = koffi.introspect(type);
  const offset: Record<string, number> = {};
  const read: Record<string, Reader> = {};
  const write: Record<string, Writer> = {};
  const pointers = new Map<string, { type: koffi.IKoffiCType; offset: number }>();
  for (const [member, declared] of Object.entries(members)) {
    const m = info.members![member]!;
    const primitive = koffi.introspect(m.type).primitive;
    offset[member] = m.offset;
    if (typeof declared === 'string' && declared in SCALAR_PRIMITIVES) {
      const expected = SCALAR_PRIMITIVES[declared as keyof typeof SCALAR_PRIMITIVES];
      if (primitive !== expected) throw new Error(`${name}.${member}: koffi lays '${declared}' out as ${primitive}, the binding reads it as ${expected}`);
      const [r, w] = accessors(primitive, m.offset)!;
      read[member] = r;
      write[member] = w;
    } else if (primitive === 'Pointer') {
      pointers.set(member, { type: m.type, offset: m.offset });
    }
  }
  return {
    name,
    type,
    size: koffi.sizeof(type),
    offset: offset as CType<M>['offset'],
    read: read as unknown as CType<M>['read'],
    write: write as unknown as CType<M>['write'],
    writePointer(member, buf, at, value) {
      const p = pointers.get(member as string);
      if (!p) throw new Error(`${name}.${String(member)} is not a pointer member`);
      koffi.encode(buf, at + p.offset, p.type, value);
    },
  };
}

/** A C struct: koffi.struct(name, members) with its size, offsets and member accessors. */
export function cStruct<const M extends Members>(name: string, members: M): CType<M> {
  return declare('struct', name, members);
}

/** A C union: koffi.union(name, members); every member at offset 0. */
export function cUnion<const M extends Members>(name: string, members: M): CType<M> {
  return declare('union', name, members);
}

/**
 * A Buffer for an array of structs that a call fills in, kept between calls (the binding is only
 * used on one thread, and every call decodes its answer before it returns). It grows to the
 * largest array asked for.
 */
export class StructArray {
  private buf: Buffer;

  constructor(
    private readonly elementSize: number,
    initialCount: number,
  ) {
    this.buf = Buffer.alloc(elementSize * initialCount);
  }

  /** Room for `count` elements, the first `count` zeroed. */
  zeroed(count: number): Buffer {
    const bytes = count * this.elementSize;
    if (bytes > this.buf.length) this.buf = Buffer.alloc(Math.max(bytes, this.buf.length * 2));
    else zeroBytes(this.buf, bytes);
    return this.buf;
  }
}

const typedArrayFill = Uint8Array.prototype.fill;

/**
 * Zeroes the first `bytes` bytes of a buffer and returns it. TypedArray's fill, not Buffer's:
 * Buffer.fill with offsets validates them through wrappers that allocate on every call, and the
 * binding zeroes its reused buffers dozens of times a tick.
 */
export function zeroBytes(buf: Buffer, bytes: number): Buffer {
  typedArrayFill.call(buf, 0, 0, bytes);
  return buf;
}
