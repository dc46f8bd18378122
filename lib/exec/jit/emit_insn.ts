/**
 * JavaScript source for single instructions of the JIT, one function per
 * instruction group. Register r`i` lives in the locals `l<i>` (low half)
 * and `h<i>` (high half), always int32, exactly as the interpreter's
 * `Int32Array` would hold them; every expression below is the interpreter's
 * case (`interp.ts`) with `R[d]` / `R[d + 1]` replaced by those locals and
 * the row's fields folded in as literals.
 *
 * Only numbers taken from the program reach the source, each through
 * {@link lit}, which refuses anything but an integer: generated code cannot
 * be steered by program contents.
 * @module
 */
import { ALU_ORDER, JMP_ORDER, OP } from "../compile.ts";
import { REGION_BASE_HI } from "../memory.ts";

/** An integer as a source literal (negative ones parenthesised). */
export function lit(x: number): string {
  if (!Number.isSafeInteger(x)) throw new RangeError(`not an integer: ${x}`);
  return x < 0 ? `(${x})` : String(x);
}

/** Local holding the low half of register `reg` (0–10). */
export function lo(reg: number): string {
  return `l${lit(reg)}`;
}

/** Local holding the high half of register `reg` (0–10). */
export function hi(reg: number): string {
  return `h${lit(reg)}`;
}

/** Stores every register local back into `R` (before leaving generated code). */
export const SPILL: string = Array.from(
  { length: 11 },
  (_, r) => `R[${2 * r}] = ${lo(r)}; R[${2 * r + 1}] = ${hi(r)};`,
).join(" ");

/** Reloads every register local from `R` (after out-of-line code changed it). */
export const RELOAD: string = Array.from(
  { length: 11 },
  (_, r) => `${lo(r)} = R[${2 * r}]; ${hi(r)} = R[${2 * r + 1}];`,
).join(" ");

/** Declarations of the register locals, loaded from `R`. */
export const DECLARE: string = "let " + Array.from(
  { length: 11 },
  (_, r) => `${lo(r)} = R[${2 * r}], ${hi(r)} = R[${2 * r + 1}]`,
).join(", ") + ";";

/** An operand: a register's halves or an immediate's (as literals). */
interface Operand {
  readonly lo: string;
  readonly hi: string;
  /** The low half read unsigned. */
  readonly ulo: string;
  /** The high half read unsigned. */
  readonly uhi: string;
}

function operand(
  reg: boolean,
  s: number,
  immLo: number,
  immHi: number,
): Operand {
  if (reg) {
    return {
      lo: lo(s),
      hi: hi(s),
      ulo: `(${lo(s)} >>> 0)`,
      uhi: `(${hi(s)} >>> 0)`,
    };
  }
  return {
    lo: lit(immLo),
    hi: lit(immHi),
    ulo: lit(immLo >>> 0),
    uhi: lit(immHi >>> 0),
  };
}

/**
 * ALU handler ids 0–55 (`4 × ALU_ORDER index + form`); `d`, `s` are
 * register numbers. Mirrors the interpreter's cases 0–55.
 */
export function emitAlu(
  op: number,
  d: number,
  s: number,
  immLo: number,
  immHi: number,
): string {
  const form = op & 3, is64 = form < 2;
  const b = operand((form & 1) === 1, s, immLo, immHi);
  const dl = lo(d), dh = hi(d);
  const zx = `${dh} = 0;`; // ALU32 zero-extends
  const viaScratch = (fn: string, args: string) =>
    `S[0] = ${dl}; S[1] = ${dh}; ${fn}(S, 0, ${args}); ${dl} = S[0]; ${dh} = S[1];`;
  switch (ALU_ORDER[op >> 2]) {
    case "add":
      return is64
        ? `{ const t = (${dl} >>> 0) + ${b.ulo}; ${dh} = (${dh} + ${b.hi} + (t > 4294967295 ? 1 : 0)) | 0; ${dl} = t | 0; }`
        : `${dl} = (${dl} + ${b.lo}) | 0; ${zx}`;
    case "sub":
      return is64
        ? `{ const a = ${dl} >>> 0, b = ${b.ulo}; ${dh} = (${dh} - (${b.hi} + (a < b ? 1 : 0))) | 0; ${dl} = (a - b) | 0; }`
        : `${dl} = (${dl} - ${b.lo}) | 0; ${zx}`;
    case "mul":
      return is64
        ? `{ const x = Math.imul(${dl}, ${b.lo}), y = (mulHiU32(${dl} >>> 0, ${b.ulo}) + Math.imul(${dl}, ${b.hi}) + Math.imul(${dh}, ${b.lo})) | 0; ${dl} = x; ${dh} = y; }`
        : `${dl} = Math.imul(${dl}, ${b.lo}); ${zx}`;
    case "div":
    case "sdiv":
    case "mod":
    case "smod": {
      const name = ALU_ORDER[op >> 2];
      return is64
        ? viaScratch(`${name}64`, `${b.lo}, ${b.hi}`)
        : `${dl} = ${name}32(${dl}, ${b.lo}); ${zx}`;
    }
    case "or":
      return `${dl} = ${dl} | ${b.lo}; ` +
        (is64 ? `${dh} = ${dh} | ${b.hi};` : zx);
    case "and":
      return `${dl} = ${dl} & ${b.lo}; ` +
        (is64 ? `${dh} = ${dh} & ${b.hi};` : zx);
    case "xor":
      return `${dl} = ${dl} ^ ${b.lo}; ` +
        (is64 ? `${dh} = ${dh} ^ ${b.hi};` : zx);
    case "mov":
      return `${dl} = ${b.lo}; ` + (is64 ? `${dh} = ${b.hi};` : zx);
    case "lsh":
    case "rsh":
    case "arsh":
      return emitShift(ALU_ORDER[op >> 2], form, d, s, immLo);
  }
  throw new RangeError(`not an ALU handler: ${op}`);
}

/** Shifts: immediate counts come pre-masked from `compile.ts`; JS masks 32-bit register counts itself. */
function emitShift(
  name: string,
  form: number,
  d: number,
  s: number,
  n: number,
): string {
  const dl = lo(d), dh = hi(d);
  if (form === 3 || form === 2) {
    const count = form === 3 ? lo(s) : lit(n);
    const expr = name === "lsh"
      ? `${dl} << ${count}`
      : name === "rsh"
      ? `(${dl} >>> ${count}) | 0`
      : `${dl} >> ${count}`;
    return `${dl} = ${expr}; ${dh} = 0;`;
  }
  if (form === 1) {
    return `S[0] = ${dl}; S[1] = ${dh}; ${name}64(S, 0, ${
      lo(s)
    } & 63); ${dl} = S[0]; ${dh} = S[1];`;
  }
  if (n === 0) return "";
  const m = lit(n), k = lit(32 - n), j = lit(n - 32);
  if (name === "lsh") {
    return n < 32
      ? `${dh} = (${dh} << ${m}) | (${dl} >>> ${k}); ${dl} = ${dl} << ${m};`
      : `${dh} = ${dl} << ${j}; ${dl} = 0;`;
  }
  if (name === "rsh") {
    return n < 32
      ? `${dl} = (${dl} >>> ${m}) | (${dh} << ${k}); ${dh} = (${dh} >>> ${m}) | 0;`
      : `${dl} = (${dh} >>> ${j}) | 0; ${dh} = 0;`;
  }
  return n < 32
    ? `${dl} = (${dl} >>> ${m}) | (${dh} << ${k}); ${dh} = ${dh} >> ${m};`
    : `${dl} = ${dh} >> ${j}; ${dh} = ${dh} >> 31;`;
}

/** NEG, MOVSX, endianness and LDDW (ids 56–66). Mirrors interpreter cases 56–66. */
export function emitUnary(
  op: number,
  d: number,
  s: number,
  immLo: number,
  immHi: number,
  aux: number,
): string {
  const dl = lo(d), dh = hi(d);
  switch (op) {
    case OP.NEG64:
      return `{ const x = ${dl}; ${dl} = (-x) | 0; ${dh} = (~${dh} + (x === 0 ? 1 : 0)) | 0; }`;
    case OP.NEG32:
      return `${dl} = (-${dl}) | 0; ${dh} = 0;`;
    case OP.MOVSX64:
      return `{ const x = (${lo(s)} << ${lit(aux)}) >> ${
        lit(aux)
      }; ${dl} = x; ${dh} = x >> 31; }`;
    case OP.MOVSX32:
      return `${dl} = (${lo(s)} << ${lit(aux)}) >> ${lit(aux)}; ${dh} = 0;`;
    case OP.LE16:
      return `${dl} = ${dl} & 65535; ${dh} = 0;`;
    case OP.LE32:
      return `${dh} = 0;`;
    case OP.LE64:
      return ""; // the host is little-endian
    case OP.BE16:
      return `${dl} = bswap16(${dl}); ${dh} = 0;`;
    case OP.BE32:
      return `${dl} = bswap32(${dl}); ${dh} = 0;`;
    case OP.BE64:
      return `{ const x = ${dl}; ${dl} = bswap32(${dh}); ${dh} = bswap32(x); }`;
    case OP.LDDW:
      return `${dl} = ${lit(immLo)}; ${dh} = ${lit(immHi)};`;
  }
  throw new RangeError(`not a unary handler: ${op}`);
}

/** Condition of a conditional jump (ids 85–128), as a JS boolean expression. */
export function jumpCondition(
  op: number,
  d: number,
  s: number,
  immLo: number,
  immHi: number,
): string {
  const rel = op - OP.JMP_BASE, form = rel & 3, is64 = form < 2;
  const b = operand((form & 1) === 1, s, immLo, immHi);
  const dl = lo(d), dh = hi(d);
  const name = JMP_ORDER[rel >> 2];
  const cmp: Record<string, string> = {
    jgt: ">",
    jge: ">=",
    jlt: "<",
    jle: "<=",
    jsgt: ">",
    jsge: ">=",
    jslt: "<",
    jsle: "<=",
  };
  switch (name) {
    case "jeq":
      return is64
        ? `${dl} === ${b.lo} && ${dh} === ${b.hi}`
        : `${dl} === ${b.lo}`;
    case "jne":
      return is64
        ? `${dl} !== ${b.lo} || ${dh} !== ${b.hi}`
        : `${dl} !== ${b.lo}`;
    case "jset":
      return is64
        ? `((${dl} & ${b.lo}) | (${dh} & ${b.hi})) !== 0`
        : `(${dl} & ${b.lo}) !== 0`;
  }
  const c = cmp[name];
  const strict = c.length === 1 ? c : c[0]; // the high halves decide when they differ
  if (name.startsWith("js")) {
    return is64
      ? `${dh} ${strict} ${b.hi} || (${dh} === ${b.hi} && (${dl} >>> 0) ${c} ${b.ulo})`
      : `${dl} ${c} ${b.lo}`;
  }
  return is64
    ? `(${dh} >>> 0) ${strict} ${b.uhi} || ((${dh} >>> 0) === ${b.uhi} && (${dl} >>> 0) ${c} ${b.ulo})`
    : `(${dl} >>> 0) ${c} ${b.ulo}`;
}

/**
 * Loads (ids 67–73) and stores (74–81) at row `k`: the interpreter's inline
 * address translation, with a fault that names slot `k`.
 */
export function emitMemory(
  k: number,
  op: number,
  d: number,
  s: number,
  off: number,
  immLo: number,
  immHi: number,
  size: number,
): string {
  const load = op <= OP.LDXSW;
  const base = load ? s : d, perm = load ? 1 : 2;
  const bl = lo(base), bh = hi(base), o = lit(off), sz = lit(size);
  const translate =
    `const sum = (${bl} >>> 0) + ${o}, o = sum | 0, id = (${bh} - ${
      lit(REGION_BASE_HI)
    } + (sum - o) / 4294967296) >>> 0; ` +
    `const g = id < regions.length ? regions[id] : regions[0]; ` +
    `if ((g.flags & ${perm}) === 0 || (o >>> 0) + ${sz} > g.size) { pc = ${
      lit(k)
    }; `;
  const dl = lo(d), dh = hi(d), sl = lo(s), sh = hi(s);
  let access: string;
  // `translate` ends inside the block of the permission test: the cold path
  // follows, then the fast access in the else branch
  switch (op) {
    case OP.LDXB:
      access = `${dl} = g.bytes[o]; ${dh} = 0;`;
      break;
    case OP.LDXH:
      access = `${dl} = g.view.getUint16(o, true); ${dh} = 0;`;
      break;
    case OP.LDXW:
      access = `${dl} = g.view.getInt32(o, true); ${dh} = 0;`;
      break;
    case OP.LDXDW:
      access =
        `const v = g.view; ${dl} = v.getInt32(o, true); ${dh} = v.getInt32(o + 4, true);`;
      break;
    case OP.LDXSB:
      access = `${dl} = g.view.getInt8(o); ${dh} = ${dl} >> 31;`;
      break;
    case OP.LDXSH:
      access = `${dl} = g.view.getInt16(o, true); ${dh} = ${dl} >> 31;`;
      break;
    case OP.LDXSW:
      access = `${dl} = g.view.getInt32(o, true); ${dh} = ${dl} >> 31;`;
      break;
    case OP.STB:
      access = `g.bytes[o] = ${lit(immLo)};`;
      break;
    case OP.STH:
      access = `g.view.setInt16(o, ${lit(immLo)}, true);`;
      break;
    case OP.STW:
      access = `g.view.setInt32(o, ${lit(immLo)}, true);`;
      break;
    case OP.STDW:
      access = `const v = g.view; v.setInt32(o, ${
        lit(immLo)
      }, true); v.setInt32(o + 4, ${lit(immHi)}, true);`;
      break;
    case OP.STXB:
      access = `g.bytes[o] = ${sl};`;
      break;
    case OP.STXH:
      access = `g.view.setInt16(o, ${sl}, true);`;
      break;
    case OP.STXW:
      access = `g.view.setInt32(o, ${sl}, true);`;
      break;
    case OP.STXDW:
      access =
        `const v = g.view; v.setInt32(o, ${sl}, true); v.setInt32(o + 4, ${sh}, true);`;
      break;
    default:
      throw new RangeError(`not a memory handler: ${op}`);
  }
  // The cold path, as the interpreter's: a hooked region (a context whose
  // fields the kernel would rewrite) answers, anything else faults inside
  // hookLoad / hookStore (cold.ts).
  const imm = op <= OP.STDW && !load;
  const cold = load
    ? `coldLoad(mem, S, ${bl}, ${bh}, ${o}, ${sz}, ${lit(k)}, ${
      lit(signBitsOf(op))
    }); ${dl} = S[0]; ${dh} = S[1];`
    : `coldStore(mem, ${bl}, ${bh}, ${o}, ${sz}, ${imm ? lit(immLo) : sl}, ${
      imm ? lit(immHi) : sh
    }, ${lit(k)});`;
  return `{ ${translate}${cold} } else { ${access} } }`;
}

/** Bits a load sign-extends from (0: it zero-extends). */
function signBitsOf(op: number): number {
  return op === OP.LDXSB ? 8 : op === OP.LDXSH ? 16 : op === OP.LDXSW ? 32 : 0;
}
