/**
 * `BPF_PROG_TEST_RUN` on the simulated kernel against the real one: every
 * run the oracle recorded beside the fixtures (`*.oracle-run.json`, the
 * 6.18 kernel's `retval` and packet after) must come out the same here,
 * and so must the array and hash maps the oracle dumped after the run
 * (`*.oracle-maps.json`, recorded with `oracle run --dump-maps`), except
 * for bytes that hold kernel pointers. Runs whose result depends on what
 * the simulator cannot reproduce are listed in SKIPPED with the reason.
 * Every run is made on each engine (the ELF parsed once for both, the
 * kernel and maps fresh for each), and the engines must agree on
 * everything: retval, r0, steps, packet, printk, full map dumps and the
 * kernel's trace hash.
 */
import assert from "node:assert/strict";
import { loadObject } from "../../lib/elf/object.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import type { LoadedObject } from "../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../lib/kernel/object_runtime.ts";
import { testRun } from "../../lib/kernel/test_run.ts";
import { toHex } from "../../lib/kernel/maps/map.ts";
import { dumpMaps } from "../../lib/cli/run_object.ts";
import { type Engine, ENGINES } from "../../lib/exec/jit/step_jit.ts";
import type { ObjectFile } from "../../lib/elf/types.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;

/** Runs not compared, by `object program`, with the reason. */
const SKIPPED: Record<string, string> = {
  // results that depend on the host, not on the program
  "externs.o use_kconfig":
    "reads .kconfig values libbpf fills from the host kernel's config",
  "verifier/helpers_types.o ok_tc_smp_processor_id_prandom_ktime":
    "retval mixes the CPU id, a random number and the time",
  "verifier/helpers_types.o ok_syscall_base_helpers":
    "retval is bpf_get_prandom_u32() & 0xff",
  "verifier/exit.o ok_cgroup_skb_return_masked":
    "retval is bpf_get_prandom_u32() & 1",
  "verifier/license_proprietary.o ok_nongpl_plain_helpers":
    "retval mixes a random number and the time",
  "loops.o call_loop": "retval sums bit 0 of ktime_get_ns() readings",
  "verifier/loops.o ok_may_goto_loop":
    "counts may_goto iterations: 6.18's budget is timed (refilled until a time limit)",
  "verifier/regs.o ok_ptr_returned_as_root":
    "retval is the low half of a kernel stack address",
  "verifier/stack.o ok_stack_uninit_read_as_root":
    "retval is uninitialised kernel stack (allowed for root)",
  "verifier/stack.o ok_stack_variable_offset_uninit_as_root":
    "retval is uninitialised kernel stack (allowed for root)",
  "verifier/helpers_types.o ok_socket_get_current_pid_tgid_as_root":
    "bpf_get_current_pid_tgid (14) is the oracle process's pid: not modelled",
  "verifier/helpers_types.o ok_socket_get_socket_cookie":
    "bpf_get_socket_cookie (46) comes from the host's global cookie counter",
  "runtime/redirect/syncookie.o tc_syncookie_cookie":
    "returns a SYN cookie: the kernel's syncookie secret is random per boot",
  "runtime/packet/skb_ops.o netns_cookie":
    "bpf_get_netns_cookie (122) counts network namespaces since the host booted",
  // missing runtime pieces
  "maps_btf.o use_map_in_map": "map-in-map (array_of_maps) is not modelled",
};

/**
 * The helper matrices' accepted programs call helper `h<id>` with r1 = ctx
 * and return its result: these helpers' results are the host's.
 */
const HOST_HELPERS: Record<number, string> = {
  5: "bpf_ktime_get_ns (5) is the host's clock",
  7: "bpf_get_prandom_u32 (7) is random",
  8: "bpf_get_smp_processor_id (8) is the CPU the oracle ran on",
  14: "bpf_get_current_pid_tgid (14) is the oracle process's pid",
  34: "bpf_get_hash_recalc (34) keys the flow hash with hashrnd, drawn at boot",
  35: "bpf_get_current_task (35) is a kernel pointer",
  109: "bpf_send_signal (109): sig is the low half of the ctx pointer",
  117: "bpf_send_signal_thread (117): sig is the low half of the ctx pointer",
  118: "bpf_jiffies64 (118) is the host's clock",
  123:
    "bpf_get_current_ancestor_cgroup_id (123): the level is the low half of the ctx pointer",
  125: "bpf_ktime_get_boot_ns (125) is the host's clock",
  158: "bpf_get_current_task_btf (158) is a kernel pointer",
  160: "bpf_ktime_get_coarse_ns (160) is the host's clock",
  208: "bpf_ktime_get_tai_ns (208) is the host's clock",
};
for (const object of ["matrix_lwt_in", "matrix_lwt_xmit"]) {
  for (const [id, reason] of Object.entries(HOST_HELPERS)) {
    SKIPPED[`helpers/${object}.o h${id}`] = reason;
  }
}
SKIPPED["helpers/matrix_cgroup_skb.o h8"] = HOST_HELPERS[8];

/** Maps whose dumped contents are not compared, with the reason. */
const SKIPPED_MAPS: Record<string, string> = {
  "externs.kconfig": "libbpf fills it from the host kernel's config",
  "graph/alloc.o new_store_pointer_to_map scratch":
    "holds a kernel pointer stored as a plain u64",
  "verifier/regs.o ok_ptr_leak_into_map_as_root regs_array":
    "holds a kernel stack pointer (allowed for root)",
};

interface OracleRun {
  readonly object: string;
  readonly program: string;
  readonly retval: number;
  readonly repeat: number;
  readonly data_out_hex?: string;
  readonly maps?: Record<string, [string, string][]>;
}

function fixtureFiles(dir: string, suffix: string, out: string[] = []) {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory) fixtureFiles(`${path}/`, suffix, out);
    else if (e.name.endsWith(suffix)) out.push(path);
  }
  return out.sort();
}

function readRuns(path: string): OracleRun[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l.trim())
    .map((l) => JSON.parse(l) as OracleRun);
}

/** The object a record names: relative to the fixtures, or to the record's own folder. */
function objectPath(record: string, object: string): string {
  const direct = FIXTURES + object;
  try {
    Deno.statSync(direct);
    return direct;
  } catch {
    return record.slice(0, record.lastIndexOf("/") + 1) +
      object.split("/").pop();
  }
}

/** Parsed objects by path: one parse serves every run and engine. */
const parsed = new Map<string, ObjectFile>();

/** A fresh kernel with `object` loaded (maps start as the loader leaves them). */
function load(record: string, object: string): LoadedObject {
  const path = objectPath(record, object);
  let obj = parsed.get(path);
  if (obj === undefined) {
    // broken/unknown_section.o: libbpf opens it; only its odd program fails to load
    obj = loadObject(Deno.readFileSync(path), object, {
      allowUnknownSections: true,
    });
    parsed.set(path, obj);
  }
  return loadObjectWithRuntime(new Kernel({ cpus: 2 }), obj);
}

/** `value` with the bytes of the map's special fields blanked (they hold kernel pointers). */
function maskSpecialFields(
  loaded: LoadedObject,
  mapName: string,
  value: string,
): string {
  const map = loaded.maps.find((m) => m.name === mapName)?.map;
  if (!map?.record) return value;
  const chars = value.split("");
  for (const f of map.record.fields) {
    for (let i = f.offset * 2; i < (f.offset + f.size) * 2; i++) chars[i] = ".";
  }
  return chars.join("");
}

/** What one engine's run left behind: everything the engines must agree on. */
interface Outcome {
  readonly retval: number;
  readonly r0: bigint;
  readonly steps: number;
  readonly dataOut: string | undefined;
  readonly printk: readonly string[];
  readonly maps: Record<string, [string, string][]>;
  readonly trace: string;
}

/** Runs `run` on `engine` on a freshly loaded kernel; checks it against the kernel's records. */
function runAndCheck(
  record: string,
  run: OracleRun,
  maps: OracleRun | undefined,
  engine: Engine,
): Outcome {
  const loaded = load(record, run.object);
  const result = testRun(loaded, run.program, { repeat: run.repeat, engine });
  assert.equal(result.retval, run.retval);
  const dataOut = result.dataOut && toHex(result.dataOut);
  if (run.data_out_hex !== undefined) {
    assert.ok(dataOut !== undefined);
    assert.equal(dataOut.slice(0, 512), run.data_out_hex);
  }
  const ours = dumpMaps(loaded);
  if (maps?.maps !== undefined) {
    const expected = maps.maps;
    assert.deepEqual(Object.keys(ours).sort(), Object.keys(expected).sort());
    const key = `${run.object} ${run.program}`;
    for (const [name, entries] of Object.entries(expected)) {
      if (SKIPPED_MAPS[name] || SKIPPED_MAPS[`${key} ${name}`]) continue;
      const mask = (e: [string, string]) =>
        [e[0], maskSpecialFields(loaded, name, e[1])] as const;
      assert.deepEqual(ours[name].map(mask), entries.map(mask), name);
    }
  }
  return {
    retval: result.retval,
    r0: result.r0,
    steps: result.steps,
    dataOut,
    printk: result.printk,
    maps: ours,
    trace: `${loaded.kernel.trace.hash()} ${loaded.kernel.reports.join("|")}`,
  };
}

Deno.test("test runs agree with the 6.18 kernel's BPF_PROG_TEST_RUN (retval, packet, maps) on every engine, and the engines agree on everything", async (t) => {
  let compared = 0, total = 0, comparedMaps = 0;
  const skipped = new Set<string>();
  const mapRecords = new Map<string, OracleRun>();
  for (const record of fixtureFiles(FIXTURES, ".oracle-maps.json")) {
    for (const run of readRuns(record)) {
      if (run.maps !== undefined) {
        mapRecords.set(`${run.object} ${run.program}`, run);
      }
    }
  }
  for (const record of fixtureFiles(FIXTURES, ".oracle-run.json")) {
    for (const run of readRuns(record)) {
      total++;
      const key = `${run.object} ${run.program}`;
      if (SKIPPED[key]) {
        skipped.add(key);
        continue;
      }
      const maps = mapRecords.get(key);
      await t.step(key, async (t) => {
        const outcomes: Outcome[] = [];
        for (const engine of ENGINES) {
          await t.step(engine, () => {
            outcomes.push(runAndCheck(record, run, maps, engine));
          });
        }
        // the whole outcome — full map dumps (pointer bytes too), the
        // trace hash, printk lines, steps — is the same on every engine
        for (let i = 1; i < outcomes.length; i++) {
          assert.deepEqual(outcomes[i], outcomes[0], ENGINES[i]);
        }
      });
      compared++;
      if (maps !== undefined) comparedMaps++;
    }
  }
  // Progress is a number anyone can read: every run is compared or skipped with a reason.
  assert.equal(compared + skipped.size, total);
  // every skip names a recorded run (the list cannot outlive its reason)
  assert.deepEqual([...skipped].sort(), Object.keys(SKIPPED).sort());
  assert.ok(compared >= 181, `only ${compared} of ${total} runs compared`);
  assert.ok(comparedMaps >= 170, `only ${comparedMaps} map dumps compared`);
});
