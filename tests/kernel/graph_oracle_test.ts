/**
 * Return values and map contents of the accepted graph fixtures against
 * the real kernel's (`tests/fixtures/graph/*.oracle-maps.json`:
 * `BPF_PROG_TEST_RUN` on 6.18, then every map dumped).
 * Each program runs once on fresh maps, as the recorder loaded each alone,
 * on each engine; the engines must leave identical r0 and map bytes.
 *
 * This bench has its own minimal loader (map relocations, a handful of
 * helpers, a `__sk_buff` whose `len` is the 64 bytes of test data) until
 * the kernel's object loader and test_run drive the graph runtime; programs
 * that need anything more (other program types, other helpers) are
 * counted as skipped, never as agreeing.
 */
import assert from "node:assert/strict";
import type { LdImm64Insn } from "../../lib/isa/insn.ts";
import {
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
} from "../../lib/isa/opcodes.ts";
import { resolveKsyms } from "../../lib/elf/ksyms.ts";
import { regionAddress } from "../../lib/exec/memory.ts";
import { runProgram } from "../../lib/exec/run.ts";
import { type Engine, ENGINES } from "../../lib/exec/jit/step_jit.ts";
import type { HelperFn } from "../../lib/exec/state.ts";
import { kfuncBtfId } from "../../lib/kernel/kfunc_ids.ts";
import { createMapFromDef } from "../../lib/kernel/maps/create.ts";
import { type BpfMap, toHex, u32Key } from "../../lib/kernel/maps/map.ts";
import {
  graphFieldFreer,
  graphHelpers,
  graphKfuncs,
} from "../../lib/kernel/graph/mod.ts";
import { graphBench } from "./graph_env.ts";

interface OracleRun {
  readonly object: string;
  readonly program: string;
  readonly retval: number;
  /** Map name -> [key hex, value hex] after the run (`--dump-maps`). */
  readonly maps?: Record<string, [string, string][]>;
}

/** What a run left: r0 and each map's entries (key hex -> value hex). */
interface FixtureResult {
  readonly r0: bigint;
  readonly maps: Map<string, { map: BpfMap; entries: Map<string, string> }>;
}

const FILES = [
  "alloc",
  "btf_control_valid",
  "kptr",
  "list_global",
  "list_hash",
  "list_map",
  "list_nested",
  "locks",
  "locks_tracing",
  "nongpl",
  "prog_types",
  "percpu",
  "rbtree",
  "refcount",
];
const DIR = new URL("../fixtures/graph/", import.meta.url);

/** Runs `program` of `file` on fresh maps; its result, or a reason it was skipped. */
function runFixture(
  file: string,
  program: string,
  engine: Engine,
): FixtureResult | string {
  const b = graphBench(file, 1);
  const obj = resolveKsyms(b.obj, kfuncBtfId);
  const prog = obj.programs.find((p) => p.name === program)!;
  if (prog.type !== "sched_cls" && prog.type !== "syscall") {
    return `program type ${prog.type}`;
  }
  const maps: BpfMap[] = obj.maps.map((def) =>
    createMapFromDef(b.space, def, obj.btf, {
      fieldFreer: graphFieldFreer(b.rt),
    })
  );
  // a map "pointer" is the address of a small kernel region, one per map
  const handles = maps.map((m) =>
    b.space.mapRegionId("kernel", 8, { name: `map ${m.attr.name}` })
  );
  const mapOf = (addr: bigint): BpfMap => {
    const i = handles.indexOf(b.space.regionAt(addr)?.id ?? -1);
    if (i < 0) throw new Error("not a map pointer");
    return maps[i];
  };
  const ldImm64 = (insn: LdImm64Insn): bigint => {
    switch (insn.src) {
      case BPF_PSEUDO_MAP_FD:
      case BPF_PSEUDO_MAP_IDX:
        return regionAddress(handles[insn.imm]);
      case BPF_PSEUDO_MAP_VALUE:
      case BPF_PSEUDO_MAP_IDX_VALUE:
        return maps[insn.imm].lookup(u32Key(0), 0)! + BigInt(insn.imm2);
      default:
        return insn.imm64;
    }
  };
  const helpers = graphHelpers();
  const lookup: HelperFn = (vm) => {
    const map = mapOf(vm.arg(1));
    return map.lookup(vm.mem.readBytes(vm.arg(2), map.attr.keySize), 0) ?? 0n;
  };
  helpers.set(1, lookup);
  helpers.set(93, (vm) => vm.mem.write(vm.arg(1), 4, 1n)); // one CPU: never contended
  helpers.set(94, (vm) => vm.mem.write(vm.arg(1), 4, 0n));
  // bpf_per_cpu_ptr / bpf_this_cpu_ptr on per-CPU objects (CPU 0 runs)
  helpers.set(
    153,
    (vm) =>
      vm.arg(2) >= 1n ? 0n : b.rt.percpuCopy(vm.arg(1), Number(vm.arg(2))),
  );
  helpers.set(154, (vm) => b.rt.percpuCopy(vm.arg(1), 0));
  const used = new Set(
    prog.insns.flatMap((i) =>
      i.kind === "call" && i.callee === "helper" ? [i.imm] : []
    ),
  );
  for (const id of used) if (!helpers.has(id)) return `helper ${id}`;
  const kfuncs = graphKfuncs(b.rt);
  for (const i of prog.insns) {
    if (i.kind === "call" && i.callee === "kfunc" && !kfuncs.has(i.imm)) {
      return `kfunc ${i.imm}`;
    }
  }
  const compiled = b.callbacks.compile(prog.insns, program, { ldImm64 });
  const ctx = new Uint8Array(192);
  if (prog.type === "sched_cls") ctx[0] = 64; // skb->len of 64 bytes of data
  const r0 = runProgram(compiled, {
    space: b.space,
    ctx,
    ctxWritable: true,
    helpers,
    kfuncs,
    engine,
  }).r0;
  const dumps = new Map(obj.maps.map((def, i) => [def.name, {
    map: maps[i],
    entries: new Map(maps[i].dump().map((e) => [toHex(e.key), toHex(e.value)])),
  }]));
  return { r0, maps: dumps };
}

/**
 * Differences between the kernel's dump of `map` and ours, comparing the
 * bytes programs own: special fields (lists, locks, kptrs) hold kernel
 * addresses in the kernel's dump and are skipped, as are 8-byte words the
 * kernel shows as direct-map pointers (a program stored an address).
 */
function mapDiffs(
  name: string,
  map: BpfMap,
  ours: Map<string, string>,
  kernel: [string, string][],
): string[] {
  if (map.syscallValueSize !== map.attr.valueSize) return []; // per-CPU: other CPU count
  const special = new Set<number>();
  for (const f of map.record?.fields ?? []) {
    for (let i = f.offset; i < f.offset + f.size; i++) special.add(i);
  }
  const out: string[] = [];
  for (const [key, value] of kernel) {
    const mine = ours.get(key);
    if (mine === undefined) {
      out.push(`${name}[${key}] missing`);
      continue;
    }
    for (let w = 0; w * 16 < value.length; w++) {
      const word = value.slice(w * 16, w * 16 + 16);
      if (word.length === 16 && word.endsWith("ffff")) continue; // a pointer
      for (let i = 0; i < word.length / 2; i++) {
        const byte = w * 8 + i;
        if (special.has(byte)) continue;
        if (
          word.slice(2 * i, 2 * i + 2) !== mine.slice(2 * byte, 2 * byte + 2)
        ) {
          out.push(
            `${name}[${key}] byte ${byte}: kernel ${value} ours ${mine}`,
          );
          break;
        }
      }
    }
  }
  return out;
}

/** Outcome of every fixture run on `engine`: mismatches with the kernel, and what each run left. */
function runAll(engine: Engine) {
  let agree = 0;
  let comparedMaps = 0;
  const skipped: string[] = [];
  const mismatches: string[] = [];
  const seen: string[] = [];
  for (const file of FILES) {
    const lines = Deno.readTextFileSync(
      new URL(`${file}.oracle-maps.json`, DIR),
    )
      .split("\n").filter((l) => l.trim() !== "");
    for (const line of lines) {
      const run = JSON.parse(line) as OracleRun;
      let got: FixtureResult | string;
      try {
        got = runFixture(file, run.program, engine);
      } catch (e) {
        got = `threw ${(e as Error).message}`;
        mismatches.push(`${file}/${run.program}: ${got}`);
        seen.push(`${file}/${run.program}: ${got}`);
        continue;
      }
      if (typeof got === "string") {
        skipped.push(`${file}/${run.program}: ${got}`);
        continue;
      }
      const result = got;
      // every byte of every map, pointers included: the engines must agree on all
      seen.push(
        `${file}/${run.program}: r0=${result.r0} ` +
          [...result.maps].map(([name, m]) =>
            `${name}{${[...m.entries].join(" ")}}`
          ).join(" "),
      );
      const diffs = Object.entries(run.maps ?? {}).flatMap(([name, kernel]) => {
        const ours = result.maps.get(name);
        return ours === undefined
          ? [`no map ${name}`]
          : mapDiffs(name, ours.map, ours.entries, kernel);
      });
      comparedMaps += Object.keys(run.maps ?? {}).length;
      if (BigInt.asIntN(32, result.r0) !== BigInt(run.retval)) {
        diffs.push(`r0 ${result.r0} != ${run.retval}`);
      }
      if (diffs.length === 0) agree++;
      else mismatches.push(`${file}/${run.program}: ${diffs.join("; ")}`);
    }
  }
  return { agree, comparedMaps, skipped, mismatches, seen };
}

Deno.test("graph fixtures: return values and maps agree with the 6.18 kernel on every engine, and the engines agree", async (t) => {
  const seen: string[][] = [];
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const { agree, comparedMaps, skipped, mismatches, seen: runs } = runAll(
        engine,
      );
      seen.push(runs);
      if (engine === ENGINES[0]) {
        console.log(
          `graph oracle runs: ${agree} agree (r0 and ${comparedMaps} map dumps), ` +
            `${skipped.length} skipped`,
        );
        for (const s of skipped) console.log(`  skipped ${s}`);
      }
      assert.deepEqual(mismatches, []);
      assert.equal(agree >= 50, true, `only ${agree} runs compared`);
    });
  }
  await t.step("the engines leave the same r0 and map bytes", () => {
    for (let i = 1; i < seen.length; i++) {
      assert.deepEqual(seen[i], seen[0], ENGINES[i]);
    }
  });
});
