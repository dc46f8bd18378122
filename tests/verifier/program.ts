/**
 * Builds one-program objects from kernel-syntax assembly for verifier
 * tests. An `lddw` of `0x7fff000N ll` becomes a reference to map N
 * (`src=BPF_PSEUDO_MAP_IDX`), as libbpf would emit it. Test helper, not a test.
 * @module
 */
import { assembleRaw } from "../../lib/isa/asm.ts";
import { decodeRaw } from "../../lib/isa/decode.ts";
import type { RawInsn } from "../../lib/isa/insn.ts";
import type { BpfMapDef } from "../../lib/elf/maps.ts";
import type { BpfProgram, ObjectFile } from "../../lib/elf/types.ts";
import { MAP_TYPE, PROG_TYPE, type ProgType } from "../../lib/uapi/bpf.ts";
import { verifyProgram, type VerifyResult } from "../../lib/verifier/verify.ts";

/** A map for {@link buildObject}: type name, key and value size, entries. */
export interface TestMap {
  readonly type: keyof typeof MAP_TYPE;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags?: number;
}

const MAP_MARK = 0x7fff0000;

function mapDef(name: string, m: TestMap): BpfMapDef {
  return {
    name,
    realName: name,
    type: m.type,
    typeId: MAP_TYPE[m.type],
    keySize: m.keySize,
    valueSize: m.valueSize,
    maxEntries: m.maxEntries,
    flags: m.flags ?? 0,
    numaNode: 0,
    mapExtra: 0,
    pinning: "none",
    btfKeyTypeId: 0,
    btfValueTypeId: 0,
    section: ".maps",
    sectionOffset: 0,
    internal: null,
    mmapable: false,
  };
}

/** A one-program object from assembly `text` of program type `type`. */
export function buildObject(
  text: string,
  type: ProgType = "sched_cls",
  maps: Record<string, TestMap> = {},
): ObjectFile {
  const raw: RawInsn[] = assembleRaw(text).map((r) => ({ ...r }));
  for (let i = 0; i < raw.length; i++) {
    if (raw[i].code === 0x18 && (raw[i].imm & ~0xff) === MAP_MARK) {
      raw[i] = { ...raw[i], src: 5, imm: raw[i].imm & 0xff };
      i++;
    }
  }
  const insns = decodeRaw(raw);
  const prog: BpfProgram = {
    name: "prog",
    section: type,
    type,
    typeId: PROG_TYPE[type],
    expectedAttachType: null,
    expectedAttachTypeId: 0,
    attachTarget: null,
    progFlags: 0,
    autoload: true,
    raw,
    insns,
    functions: [{ name: "prog", start: 0, length: raw.length }],
    relocations: [],
  };
  return {
    name: "test",
    file: "test.o",
    license: "GPL",
    kernVersion: null,
    programs: [prog],
    maps: Object.entries(maps).map(([n, m]) => mapDef(n, m)),
    externs: [],
    warnings: [],
  };
}

/** Verifies the program of {@link buildObject} (log level 1 unless given). */
export function verifyText(
  text: string,
  type: ProgType = "sched_cls",
  maps: Record<string, TestMap> = {},
  logLevel: 0 | 1 | 2 = 1,
): VerifyResult {
  const obj = buildObject(text, type, maps);
  return verifyProgram(obj, obj.programs[0], { logLevel });
}
