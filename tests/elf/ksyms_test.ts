// Kfunc externs resolved against the simulated kernel's BTF ids, as libbpf
// resolves them against vmlinux BTF.
import { equal, ok, throws } from "node:assert/strict";
import { loadObject } from "../../lib/elf/object.ts";
import { resolveKsyms } from "../../lib/elf/ksyms.ts";
import { LoadError } from "../../lib/elf/errors.ts";
import { kfuncBtfId, kfuncName } from "../../lib/kernel/kfunc_ids.ts";

const file = new URL("../fixtures/graph.o", import.meta.url);
const obj = loadObject(Deno.readFileSync(file), "graph.o");

Deno.test("every kfunc call gets the kernel's BTF id of its extern", () => {
  const resolved = resolveKsyms(obj, kfuncBtfId);
  let calls = 0;
  for (const program of resolved.programs) {
    for (
      const r of program.relocations.filter((r) => r.kind === "kfunc_call")
    ) {
      const insn = program.insns[r.insnIndex];
      ok(insn.kind === "call" && insn.callee === "kfunc");
      const name = obj.externs[r.externIndex!].essentialName;
      equal(
        kfuncName(insn.imm),
        name,
        `${program.name} insn ${r.insnIndex} calls ${name}`,
      );
      equal(program.raw[r.insnIndex].imm, insn.imm);
      calls++;
    }
  }
  ok(calls >= 5, `graph.o calls kfuncs (${calls} calls)`);
  // the input object is plain data and stays as loaded
  const before = obj.programs[0].relocations.find((r) =>
    r.kind === "kfunc_call"
  )!;
  equal(obj.programs[0].raw[before.insnIndex].imm, 0);
});

Deno.test("a kfunc the kernel lacks is a load error naming it, like libbpf's", () => {
  const withoutObjNew = (name: string) =>
    name === "bpf_obj_new_impl" ? undefined : kfuncBtfId(name);
  throws(
    () => resolveKsyms(obj, withoutObjNew),
    (e: unknown) =>
      e instanceof LoadError &&
      /graph\.o: .*extern \(func ksym\) 'bpf_obj_new_impl': not found in kernel or module BTFs/
        .test(e.message),
  );
});
