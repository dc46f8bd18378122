/**
 * Which registers a generated function keeps in locals, and the source
 * that moves them between the locals and the register file `R`.
 * @module
 */
import { hi, lo } from "./emit_insn.ts";

/**
 * The registers one generated function keeps in locals, and the source
 * moving them between locals and `R`. Registers the program never names
 * stay in `R` only: entering and leaving generated code then costs two
 * moves per register the program uses, not 22.
 */
export interface RegisterLocals {
  /** Per register 0–10: held in locals. */
  readonly used: readonly boolean[];
  /** `let` declarations, loaded from `R`. */
  readonly declare: string;
  /** Stores the locals into `R`. */
  readonly spill: string;
  /** Loads the locals from `R`. */
  readonly reload: string;
}

/** {@link RegisterLocals} for the registers flagged in `used`. */
export function registerLocals(used: readonly boolean[]): RegisterLocals {
  const regs = Array.from({ length: 11 }, (_, r) => r).filter((r) => used[r]);
  const join = (f: (r: number) => string, sep: string) => regs.map(f).join(sep);
  return {
    used,
    declare: "let " +
      join((r) => `${lo(r)} = R[${2 * r}], ${hi(r)} = R[${2 * r + 1}]`, ", ") +
      ";",
    spill: join(
      (r) => `R[${2 * r}] = ${lo(r)}; R[${2 * r + 1}] = ${hi(r)};`,
      " ",
    ),
    reload: join(
      (r) => `${lo(r)} = R[${2 * r}]; ${hi(r)} = R[${2 * r + 1}];`,
      " ",
    ),
  };
}

/** Source naming register `r`'s low and high halves: its locals, or its `R` words. */
export function regHalves(locals: RegisterLocals, r: number): [string, string] {
  return locals.used[r] ? [lo(r), hi(r)] : [`R[${2 * r}]`, `R[${2 * r + 1}]`];
}
