/**
 * An independent, bigint-based model of RFC 9669 ALU and jump semantics,
 * used as the expectation in differential tests of the int32-pair
 * interpreter. Written from the RFC's tables, not from lib/exec.
 * @module
 */

const u64 = (x: bigint): bigint => BigInt.asUintN(64, x);
const s64 = (x: bigint): bigint => BigInt.asIntN(64, x);
const u32 = (x: bigint): bigint => BigInt.asUintN(32, x);
const s32 = (x: bigint): bigint => BigInt.asIntN(32, x);

/** Result of `a op b` (unsigned 64-bit; 32-bit ops zero-extended). */
export function refAlu(op: string, w32: boolean, a: bigint, b: bigint): bigint {
  if (w32) {
    const x = u32(a), y = u32(b);
    return u32(alu(op, x, y, 32n, s32(x), s32(y)));
  }
  const x = u64(a), y = u64(b);
  return u64(alu(op, x, y, 64n, s64(x), s64(y)));
}

function alu(
  op: string,
  x: bigint,
  y: bigint,
  width: bigint,
  sx: bigint,
  sy: bigint,
): bigint {
  const mask = width - 1n;
  switch (op) {
    case "add":
      return x + y;
    case "sub":
      return x - y;
    case "mul":
      return x * y;
    case "div":
      return y === 0n ? 0n : x / y;
    case "sdiv":
      return sy === 0n ? 0n : sx / sy; // bigint division truncates toward zero
    case "mod":
      return y === 0n ? x : x % y;
    case "smod":
      return sy === 0n ? x : sx % sy; // sign follows the dividend
    case "or":
      return x | y;
    case "and":
      return x & y;
    case "xor":
      return x ^ y;
    case "lsh":
      return x << (y & mask);
    case "rsh":
      return x >> (y & mask);
    case "arsh":
      return sx >> (y & mask);
    case "mov":
      return y;
    default:
      throw new Error(`no reference for ${op}`);
  }
}

/** Whether `a op b` holds (JMP: 64-bit; JMP32: low halves). */
export function refJmp(
  op: string,
  w32: boolean,
  a: bigint,
  b: bigint,
): boolean {
  const x = w32 ? u32(a) : u64(a), y = w32 ? u32(b) : u64(b);
  const sx = w32 ? s32(a) : s64(a), sy = w32 ? s32(b) : s64(b);
  switch (op) {
    case "jeq":
      return x === y;
    case "jne":
      return x !== y;
    case "jgt":
      return x > y;
    case "jge":
      return x >= y;
    case "jlt":
      return x < y;
    case "jle":
      return x <= y;
    case "jset":
      return (x & y) !== 0n;
    case "jsgt":
      return sx > sy;
    case "jsge":
      return sx >= sy;
    case "jslt":
      return sx < sy;
    case "jsle":
      return sx <= sy;
    default:
      throw new Error(`no reference for ${op}`);
  }
}
