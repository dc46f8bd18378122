/**
 * What tests/kernel/hooks/iter/btf_show_test.ts and btf_print_helpers_test.ts share:
 * the objects of tests/fixtures/runtime/btf_show/ on fresh kernels, type
 * lookups, little-endian object bytes and `struct elem` of print_iter.c.
 */
import assert from "node:assert/strict";
import type { BtfKindName } from "../../../../lib/btf/types.ts";
import { loadObject } from "../../../../lib/elf/object.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";

const DIR = "../../../fixtures/runtime/btf_show/";

/** Errnos the helpers return. */
export const EINVAL = -22, ENOENT = -2, EFAULT = -14, ERANGE = -34;

/** Fixture `name` (verified) on a fresh one-CPU kernel. */
export function load(name: string, cpus = 1): LoadedObject {
  const bytes = Deno.readFileSync(new URL(DIR + name, import.meta.url));
  return loadObjectWithRuntime(new Kernel({ cpus }), loadObject(bytes, name), {
    verify: true,
  });
}

/** Id of the type `name` (of `kind`) in `loaded`'s BTF. */
export function idOf(
  loaded: LoadedObject,
  name: string,
  kind: BtfKindName,
): number {
  const id = loaded.object.btf!.findByName(name, kind);
  assert.ok(id !== undefined, `${kind} ${name}`);
  return id;
}

/** Little-endian bytes from (offset, size, value) triples. */
export function bytes(
  size: number,
  ...fields: [number, number, bigint][]
): Uint8Array {
  const b = new Uint8Array(size);
  for (const [off, n, v] of fields) {
    for (let i = 0; i < n; i++) {
      b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
    }
  }
  return b;
}

/** struct elem of print_iter.c: id@0 name[6]@4 flag:1,level:3@10 colour@12 inner{s@16,w@24} vals[3]@32, 48 bytes. */
export function elem(f: {
  id?: number;
  name?: string;
  flag?: number;
  level?: number;
  colour?: number;
  s?: number;
  vals?: number[];
}): Uint8Array {
  const b = bytes(
    48,
    [0, 4, BigInt(f.id ?? 0)],
    [10, 1, BigInt((f.flag ?? 0) | ((f.level ?? 0) << 1))],
    [12, 4, BigInt(f.colour ?? 0)],
    [16, 2, BigInt(f.s ?? 0)],
  );
  [...(f.name ?? "")].forEach((c, i) => b[4 + i] = c.charCodeAt(0));
  (f.vals ?? []).forEach((v, i) => b[32 + 4 * i] = v);
  return b;
}

/** The first element of the iterator test: every kind of member non-zero. */
export const E0 = {
  id: 1,
  name: "ab",
  flag: 1,
  level: 5,
  colour: 5,
  s: -2,
  vals: [0, 7, 0],
};
/** {@link E0} printed with BTF_F_COMPACT. */
export const E0_COMPACT: string =
  "(struct elem){.id = (int)1,.name = (char[])['a','b',]," +
  ".flag = (unsigned char)0x1,.level = (unsigned char)0x5," +
  ".colour = (enum colour)GREEN,.inner = (struct){.s = (short)-2,}," +
  ".vals = (unsigned int[])[7,],}";
