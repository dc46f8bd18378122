// Shared set-up of the sk_msg / sockmap tests: loading the fixtures of
// tests/fixtures/runtime/skmsg and reading / writing their globals (.bss)
// by the names BTF gives them.
import { loadObject } from "../../../../lib/elf/object.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";

/** Loads fixture `name` (runtime/skmsg/<name>) with verification on. */
export function loadSkmsgFixture(name: string): LoadedObject {
  const bytes = Deno.readFileSync(
    new URL(`../../../fixtures/runtime/skmsg/${name}`, import.meta.url),
  );
  return loadObjectWithRuntime(
    new Kernel({ cpus: 1 }),
    loadObject(bytes, name),
    { verify: true },
  );
}

/** The globals of `loaded`'s `.bss`, read and written by name. */
export class Globals {
  private readonly vars = new Map<string, { offset: number; size: number }>();
  private readonly base: bigint;
  private readonly loaded: LoadedObject;

  /** Finds `.bss` in the BTF and its map's value. */
  constructor(loaded: LoadedObject) {
    this.loaded = loaded;
    const types = loaded.object.btf!.types;
    const sec = types.find((t) => t.kind === "DATASEC" && t.name === ".bss");
    if (sec?.kind !== "DATASEC") throw new Error("no .bss");
    for (const v of sec.vars) {
      this.vars.set(types[v.type].name, { offset: v.offset, size: v.size });
    }
    const map = loaded.maps.find((m) => m.name.endsWith(".bss"))!.map!;
    this.base = map.lookup(new Uint8Array(4), 0)!;
  }

  private at(name: string): { address: bigint; size: 1 | 2 | 4 | 8 } {
    const v = this.vars.get(name);
    if (v === undefined) throw new Error(`no global ${name}`);
    return {
      address: this.base + BigInt(v.offset),
      size: v.size as 1 | 2 | 4 | 8,
    };
  }

  /** The global's value, unsigned. */
  get(name: string): bigint {
    const { address, size } = this.at(name);
    return this.loaded.kernel.space.read(address, size);
  }

  /** The global's value as a signed 64-bit number (a helper's `long` return). */
  signed(name: string): number {
    return Number(BigInt.asIntN(64, this.get(name)));
  }

  /** Sets the global. */
  set(name: string, value: number | bigint): void {
    const { address, size } = this.at(name);
    this.loaded.kernel.space.write(address, size, BigInt(value));
  }
}

/** `n` bytes, byte k = k % 251 (distinct across element edges). */
export function pattern(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, k) => k % 251);
}

/** `whole` cut into consecutive fragments of the given sizes. */
export function cut(whole: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push(whole.slice(at, at + n));
    at += n;
  }
  return out;
}

/** The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
