/**
 * The cgroup sysctl fixtures as the real kernel ran them: each record of
 * tests/fixtures/runtime/hooks/*.kernel-runs.json (made by
 * tools/kernel_runs.sh on the oracle's 6.18.44 kernel: the programs
 * attached to a scratch cgroup, one read or write of
 * /proc/sys/kernel/domainname from a task in it) is replayed through
 * runSysctlHook() on both engines. The object's `.bss` after the run must
 * equal the kernel's byte for byte, and the access's result and the value
 * stored must follow from the hook's result and domainname's proc handler.
 */
import assert from "node:assert/strict";
import { loadObject } from "../../../../lib/elf/object.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import {
  runSysctlHook,
  type SysctlHookResult,
} from "../../../../lib/kernel/hooks/cgroup/sysctl_hook.ts";

interface KernelRun {
  object: string;
  programs: string[];
  write: boolean;
  value: string | null;
  /** domainname before the access. */
  current: string;
  /** What read()/write() returned: bytes, or -errno. */
  result: number;
  /** domainname after the access. */
  stored: string;
  bss_hex: string;
}

const DIR = new URL("../../../fixtures/runtime/hooks/", import.meta.url);

function records(): KernelRun[] {
  return ["sysctl", "retval"].flatMap((obj) =>
    Deno.readTextFileSync(new URL(`${obj}.kernel-runs.json`, DIR))
      .split("\n").filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as KernelRun)
  );
}

const hex = (b: Uint8Array) =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

/**
 * What the access returns and leaves stored, from the hook's result:
 * `proc_sys_call_handler()` returns a nonzero hook result as is; otherwise
 * domainname's handler (`proc_do_uts_string()` → `proc_dostring()`, strict
 * writes) runs from `*ppos`: a read returns the text from there, a write
 * takes every byte and stores it at `*ppos` (at most the current length).
 */
function procOutcome(
  run: KernelRun,
  hook: SysctlHookResult,
): { result: number; stored: string } {
  const current = run.current;
  if (!hook.proceeds) return { result: hook.retval, stored: current };
  const pos = Number(hook.filePos);
  if (!run.write) return { result: current.length - pos, stored: current };
  const text = current.replace(/\n$/, "");
  const written = new TextDecoder().decode(hook.written);
  return {
    result: hook.written!.length,
    stored: text.slice(0, Math.min(pos, text.length)) + written + "\n",
  };
}

for (const engine of ["interp", "jit"] as const) {
  Deno.test(`[${engine}] the sysctl hook agrees with the 6.18.44 kernel's runs`, async (t) => {
    const all = records();
    assert.ok(all.length >= 19, `${all.length} records`);
    for (const run of all) {
      const label = `${run.object} [${run.programs.join(", ")}] ${
        run.write ? `write "${run.value}"` : "read"
      }`;
      await t.step(label, () => {
        const loaded = loadObjectWithRuntime(
          new Kernel({ cpus: 1 }),
          loadObject(Deno.readFileSync(new URL(run.object, DIR)), run.object),
        );
        const hook = runSysctlHook(loaded, run.programs, {
          name: "kernel/domainname",
          current: run.current,
          write: run.write,
          newValue: run.value ?? undefined,
        }, { engine });
        const bss = loaded.maps.find((m) => m.name.endsWith(".bss"))!.map!
          .lookupValueCopy(new Uint8Array(4));
        assert.ok(bss instanceof Uint8Array);
        assert.equal(hex(bss), run.bss_hex, "the .bss after the run");
        assert.deepEqual(procOutcome(run, hook), {
          result: run.result,
          stored: run.stored,
        });
      });
    }
  });
}
