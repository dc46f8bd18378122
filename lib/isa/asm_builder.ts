/**
 * Collects assembled slots, labels and forward references, then resolves
 * label references into slot-relative offsets. Both assembler dialects emit
 * through it, so labels and jump ranges behave the same in each.
 * @module
 */
import type { RawInsn } from "./insn.ts";
import { AsmError, type SourcePos } from "./asm_error.ts";

/** Which field of a slot holds a jump distance: `off` (16 bits) or `imm` (32 bits). */
export type TargetField = "off" | "imm";

/** A label reference to patch once every label is known. */
interface Fixup {
  readonly slot: number;
  readonly field: TargetField;
  readonly label: string;
  readonly pos: SourcePos;
}

/** The builder's output: slots and, for each slot, the source position it came from. */
export interface BuiltProgram {
  /** The instruction slots (an `lddw` fills two). */
  readonly raws: RawInsn[];
  /** Source position of each slot (both halves of an `lddw` share one). */
  readonly positions: SourcePos[];
}

const INT16_MIN = -0x8000;
const INT16_MAX = 0x7fff;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/** True when `value` fits the signed field (`off`: 16 bits, `imm`: 32 bits). */
export function fitsField(value: number, field: TargetField): boolean {
  return field === "off"
    ? value >= INT16_MIN && value <= INT16_MAX
    : value >= INT32_MIN && value <= INT32_MAX;
}

/** Accumulates one program; holds the label table, hence a class. */
export class ProgramBuilder {
  /** Name of the input, used in every error. */
  readonly fileName: string;
  readonly #raws: RawInsn[] = [];
  readonly #positions: SourcePos[] = [];
  readonly #labels = new Map<string, number>();
  readonly #fallbackLabels = new Map<string, number>();
  readonly #fixups: Fixup[] = [];

  /** Starts an empty program for input `fileName`. */
  constructor(fileName: string) {
    this.fileName = fileName;
  }

  /** Number of slots emitted so far: the slot index of the next instruction. */
  get slotCount(): number {
    return this.#raws.length;
  }

  /** An `AsmError` at `pos` (the caller throws it). */
  error(pos: SourcePos, reason: string): AsmError {
    return new AsmError(this.fileName, pos, reason);
  }

  /** Defines `name` at the next slot; a second definition is an error. */
  defineLabel(name: string, pos: SourcePos): void {
    if (this.#labels.has(name)) {
      throw this.error(pos, `label '${name}' is defined twice`);
    }
    this.#labels.set(name, this.#raws.length);
  }

  /**
   * Defines `name` at the next slot unless it is already defined here or
   * explicitly anywhere (the conformance dialect's implicit `exit` label).
   */
  defineFallbackLabel(name: string): void {
    if (!this.#fallbackLabels.has(name)) {
      this.#fallbackLabels.set(name, this.#raws.length);
    }
  }

  /** True when `name` is an explicit label defined so far. */
  hasLabel(name: string): boolean {
    return this.#labels.has(name);
  }

  /** The slot at `index` as emitted (label references not yet resolved). */
  slotAt(index: number): RawInsn {
    return this.#raws[index];
  }

  /** Appends one slot. */
  emit(raw: RawInsn, pos: SourcePos): void {
    this.#raws.push(raw);
    this.#positions.push(pos);
  }

  /**
   * Appends one slot whose `field` gets the distance to `label`
   * (new pc = pc + 1 + distance); `labelPos` is where the label is named.
   */
  emitTargeted(
    raw: RawInsn,
    field: TargetField,
    label: string,
    pos: SourcePos,
    labelPos: SourcePos = pos,
  ): void {
    this.#fixups.push({ slot: this.#raws.length, field, label, pos: labelPos });
    this.emit(raw, pos);
  }

  /** Resolves label references and returns the program. */
  build(): BuiltProgram {
    for (const fixup of this.#fixups) {
      const target = this.#labels.get(fixup.label) ??
        this.#fallbackLabels.get(fixup.label);
      if (target === undefined) {
        throw this.error(fixup.pos, `unknown label '${fixup.label}'`);
      }
      const distance = target - (fixup.slot + 1);
      if (!fitsField(distance, fixup.field)) {
        const bits = fixup.field === "off" ? 16 : 32;
        throw this.error(
          fixup.pos,
          `distance ${distance} to label '${fixup.label}' does not fit in ${bits} bits`,
        );
      }
      const raw = this.#raws[fixup.slot];
      this.#raws[fixup.slot] = fixup.field === "off"
        ? { ...raw, off: distance }
        : { ...raw, imm: distance };
    }
    return { raws: [...this.#raws], positions: [...this.#positions] };
  }
}
