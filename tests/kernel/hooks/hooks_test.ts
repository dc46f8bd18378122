/**
 * Hooks the kernel cannot test-run: the cgroup sysctl hook with its
 * helpers, the cgroup run context's retval, and lirc_mode2. The fixtures
 * (tests/fixtures/runtime/hooks) run through runSysctlHook() /
 * runLircProgram(); every expectation is worked out by hand from the
 * kernel function named beside it (kernel/bpf/cgroup.c,
 * drivers/media/rc/bpf-lirc.c). The "kernel/domainname" cases were also
 * observed on the 6.18.44 kernel of the oracle's machine:
 * hooks_kernel_runs_test.ts replays those records.
 */
import assert from "node:assert/strict";
import { loadObject } from "../../../lib/elf/object.ts";
import { Kernel } from "../../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../../lib/kernel/object_runtime.ts";
import type { LoadedObject } from "../../../lib/kernel/object_loader.ts";
import { MemoryFault } from "../../../lib/exec/fault.ts";
import { TestRunError } from "../../../lib/kernel/test_run.ts";
import { ProgramRejectedError } from "../../../lib/kernel/load_verify.ts";
import { runSysctlHook } from "../../../lib/kernel/hooks/cgroup/sysctl_hook.ts";
import type { SysctlAccess } from "../../../lib/kernel/hooks/cgroup/sysctl_ctx.ts";
import {
  cgroupProgDone,
  cgroupRetvalHelpers,
  CgroupRunCtx,
  isErrValue,
} from "../../../lib/kernel/hooks/cgroup/cgroup_run_ctx.ts";
import {
  LIRC_MODE2,
  RcDevice,
  runLircProgram,
} from "../../../lib/kernel/hooks/lirc_hook.ts";
import { verifyProgram } from "../../../lib/verifier/verify.ts";
import { ctxAccess } from "../../../lib/verifier/ctx_access/mod.ts";
import { AddressSpace } from "../../../lib/exec/memory.ts";
import { callHelper } from "../helper_call.ts";

const EPERM = -1, E2BIG = -7, EINVAL = -22, EBUSY = -16;
const ENGINES = ["interp", "jit"] as const;

function load(path: string, verify = true): LoadedObject {
  const url = new URL(`../../fixtures/runtime/hooks/${path}`, import.meta.url);
  return loadObjectWithRuntime(
    new Kernel({ cpus: 1 }),
    loadObject(Deno.readFileSync(url), path),
    { verify },
  );
}

/** The `.bss` map value (the fixtures' result globals start at offset 0). */
function bss(loaded: LoadedObject): Uint8Array {
  const map = loaded.maps.find((m) => m.name.endsWith(".bss"))!.map!;
  const v = map.lookupValueCopy(new Uint8Array(4));
  assert.ok(v instanceof Uint8Array);
  return v;
}

/** sysctl.c's `struct result`: long ret[4]; char buf[4][32]; u32 write, file_pos. */
function result(loaded: LoadedObject) {
  const b = bss(loaded);
  const v = new DataView(b.buffer, b.byteOffset);
  return {
    ret: [0, 1, 2, 3].map((i) => Number(v.getBigInt64(8 * i, true))),
    buf: [0, 1, 2, 3].map((i) => b.slice(32 + 32 * i, 64 + 32 * i)),
    write: v.getUint32(160, true),
    filePos: v.getUint32(164, true),
  };
}

/** Live regions named `name`: a runner must unmap its context. */
function liveRegions(loaded: LoadedObject, name: string): number {
  return loaded.kernel.space.regions.filter((r) => r.live && r.name === name)
    .length;
}

/** `text` then zeros to `len` bytes. */
function padded(text: string, len = 32): Uint8Array {
  const out = new Uint8Array(len);
  out.set(new TextEncoder().encode(text));
  return out;
}

const TCP_MEM: SysctlAccess = {
  name: "net/ipv4/tcp_mem",
  current: "600\n",
  write: false,
};
const DOMAINNAME: SysctlAccess = {
  name: "kernel/domainname",
  current: "(none)\n",
  write: true,
  newValue: "foo",
};

for (const engine of ENGINES) {
  Deno.test(`[${engine}] bpf_sysctl_get_name mirrors sysctl_cpy_dir() and strscpy()`, async (t) => {
    const loaded = load("sysctl.o");
    await t.step("net/ipv4/tcp_mem into 32, 8 and 1 bytes", () => {
      const r = runSysctlHook(loaded, "get_name_full", TCP_MEM, { engine });
      assert.deepEqual(r.verdicts, [1]);
      const res = result(loaded);
      // "net/" "ipv4/" "tcp_mem": 4 + 5 + 7
      assert.equal(res.ret[0], 16);
      assert.deepEqual(res.buf[0], padded("net/ipv4/tcp_mem"));
      // 8 bytes: "net/" (4) then strscpy("ipv4", 4) copies "ipv" + NUL
      assert.equal(res.ret[1], E2BIG);
      assert.deepEqual(res.buf[1], padded("net/ipv"));
      // 1 byte: the root's "" fits, "net" does not: just the NUL
      assert.equal(res.ret[2], E2BIG);
      assert.deepEqual(res.buf[2], padded(""));
    });
    await t.step("kernel/domainname (as the 6.18.44 kernel wrote it)", () => {
      runSysctlHook(loaded, "get_name_full", DOMAINNAME, { engine });
      const res = result(loaded);
      assert.deepEqual(res.ret.slice(0, 3), [17, E2BIG, E2BIG]);
      assert.deepEqual(res.buf[0], padded("kernel/domainname"));
      // "kernel/" is 7 bytes: the 8th holds the NUL of the cut procname
      assert.deepEqual(res.buf[1], padded("kernel/"));
    });
    await t.step("BPF_F_SYSCTL_BASE_NAME copies the procname alone", () => {
      runSysctlHook(loaded, "get_name_base", TCP_MEM, { engine });
      let res = result(loaded);
      assert.deepEqual(res.ret.slice(0, 2), [7, E2BIG]);
      // only 8 and 4 bytes are copied out: compare those
      assert.deepEqual(res.buf[0].subarray(0, 8), padded("tcp_mem", 8));
      assert.deepEqual(res.buf[1].subarray(0, 4), padded("tcp", 4));
      runSysctlHook(loaded, "get_name_base", DOMAINNAME, { engine });
      res = result(loaded);
      assert.deepEqual(res.ret.slice(0, 2), [E2BIG, E2BIG]);
      assert.deepEqual(res.buf[0].subarray(0, 8), padded("domainn", 8));
      assert.deepEqual(res.buf[1].subarray(0, 4), padded("dom", 4));
    });
    await t.step("a table at the root has no directory part", () => {
      runSysctlHook(loaded, "get_name_full", { name: "top", write: false }, {
        engine,
      });
      assert.deepEqual(result(loaded).buf[0], padded("top"));
      assert.equal(result(loaded).ret[0], 3);
    });
  });

  Deno.test(`[${engine}] the value helpers mirror copy_sysctl_value()`, async (t) => {
    const loaded = load("sysctl.o");
    await t.step("current value: zero-padded, or cut with a NUL", () => {
      runSysctlHook(loaded, "get_current", TCP_MEM, { engine });
      const res = result(loaded);
      assert.equal(res.ret[0], 4);
      assert.deepEqual(res.buf[0].subarray(0, 16), padded("600\n", 16));
      // a buffer as long as the value leaves no room for the NUL
      assert.equal(res.ret[1], E2BIG);
      assert.deepEqual(res.buf[1].subarray(0, 4), padded("600", 4));
    });
    await t.step(
      "a failed proc handler leaves cur_len 0: -EINVAL, buffer zeroed",
      () => {
        runSysctlHook(
          loaded,
          "get_current",
          { ...TCP_MEM, current: undefined },
          {
            engine,
          },
        );
        const res = result(loaded);
        assert.deepEqual(res.ret.slice(0, 2), [EINVAL, EINVAL]);
        assert.deepEqual(res.buf[0].subarray(0, 16), padded("", 16));
      },
    );
    await t.step("new value on a write", () => {
      const r = runSysctlHook(loaded, "get_new", {
        ...TCP_MEM,
        write: true,
        newValue: "1234\n",
      }, { engine });
      const res = result(loaded);
      assert.equal(res.ret[0], 5);
      assert.equal(res.write, 1);
      assert.deepEqual(res.buf[0].subarray(0, 16), padded("1234\n", 16));
      assert.deepEqual(r.written, new TextEncoder().encode("1234\n"));
      assert.equal(r.replaced, false);
    });
    await t.step("new value on a read: -EINVAL, the buffer zeroed", () => {
      const r = runSysctlHook(loaded, "get_new", TCP_MEM, { engine });
      const res = result(loaded);
      assert.equal(res.ret[0], EINVAL);
      assert.equal(res.write, 0);
      assert.deepEqual(res.buf[0].subarray(0, 16), padded("", 16));
      assert.equal(r.written, undefined);
    });
  });

  Deno.test(`[${engine}] bpf_sysctl_set_new_value replaces what the write stores`, async (t) => {
    const loaded = load("sysctl.o");
    await t.step("a write: replaced, then read back", () => {
      const r = runSysctlHook(loaded, "set_new", DOMAINNAME, { engine });
      const res = result(loaded);
      // 4096 bytes > PAGE_SIZE - 1: -E2BIG, the first value stays
      assert.deepEqual(res.ret.slice(0, 3), [0, E2BIG, 3]);
      assert.deepEqual(res.buf[0].subarray(0, 8), padded("600", 8));
      assert.equal(r.retval, 0);
      assert.equal(r.proceeds, true);
      assert.equal(r.replaced, true);
      // the handler gets "600" (3 bytes): the kernel then read "600\n" back
      assert.deepEqual(r.written, new TextEncoder().encode("600"));
    });
    await t.step("a read: -EINVAL, nothing written", () => {
      const r = runSysctlHook(loaded, "set_new", TCP_MEM, { engine });
      assert.deepEqual(result(loaded).ret.slice(0, 3), [
        EINVAL,
        EINVAL,
        EINVAL,
      ]);
      assert.equal(r.replaced, false);
      assert.equal(r.written, undefined);
    });
    await t.step("a zero-length write has no new_val: -EINVAL", () => {
      const r = runSysctlHook(loaded, "set_new", {
        ...DOMAINNAME,
        newValue: "",
      }, { engine });
      assert.equal(result(loaded).ret[0], EINVAL);
      assert.deepEqual(r.written, new Uint8Array(0));
    });
    await t.step(
      "a denial after the replacement keeps the written bytes out",
      () => {
        const r = runSysctlHook(loaded, ["set_new", "deny"], DOMAINNAME, {
          engine,
        });
        assert.deepEqual(r.verdicts, [1, 0]);
        assert.equal(r.retval, EPERM);
        assert.equal(r.proceeds, false);
        assert.equal(r.replaced, false);
        assert.equal(r.written, undefined);
      },
    );
  });

  Deno.test(`[${engine}] ctx->write and ctx->file_pos as sysctl_convert_ctx_access() rewrites them`, () => {
    const loaded = load("sysctl.o");
    const r = runSysctlHook(loaded, "file_pos", {
      ...DOMAINNAME,
      filePos: 0x100000005n,
    }, { engine });
    const res = result(loaded);
    assert.equal(res.write, 1);
    assert.equal(res.filePos, 5); // the low half of *ppos
    // a u32 store replaces the low half of the 64-bit *ppos
    assert.equal(r.filePos, 0x100000002n);
    assert.equal(r.proceeds, true);
    const read = runSysctlHook(loaded, "file_pos", TCP_MEM, { engine });
    assert.equal(result(loaded).write, 0);
    assert.equal(read.filePos, 2n);
    assert.equal(read.written, undefined);
    assert.equal(liveRegions(loaded, "bpf_sysctl"), 0);
  });

  Deno.test(`[${engine}] retval mirrors bpf_prog_run_array_cg()`, async (t) => {
    const loaded = load("retval.o");
    const seen = () => {
      const b = bss(loaded);
      const v = new DataView(b.buffer, b.byteOffset);
      return [0, 1, 2, 3].map((i) => v.getInt32(4 * i, true));
    };
    await t.step("returning 0 makes the hook fail with -EPERM", () => {
      const r = runSysctlHook(load("sysctl.o"), "deny", DOMAINNAME, { engine });
      assert.equal(r.retval, EPERM);
      assert.equal(r.proceeds, false);
    });
    await t.step("an error already set survives a 0 verdict", () => {
      const r = runSysctlHook(loaded, "busy_deny", DOMAINNAME, { engine });
      assert.deepEqual(seen().slice(0, 2), [0, EBUSY]);
      assert.deepEqual(r.verdicts, [0]);
      assert.equal(r.retval, EBUSY);
    });
    await t.step("an error set by an allowing program is the result", () => {
      const r = runSysctlHook(loaded, "busy_allow", DOMAINNAME, { engine });
      assert.deepEqual(r.verdicts, [1]);
      assert.equal(r.retval, EBUSY);
    });
    await t.step("later programs see the retval earlier ones left", () => {
      const r = runSysctlHook(
        loaded,
        ["busy_allow", "forgive", "probe"],
        DOMAINNAME,
        { engine },
      );
      assert.equal(seen()[2], 0);
      assert.equal(r.retval, 0);
      runSysctlHook(loaded, ["busy_allow", "probe"], DOMAINNAME, { engine });
      assert.equal(seen()[2], EBUSY);
      // a 0 verdict turns retval 0 into -EPERM before the next program runs
      const denied = runSysctlHook(
        loaded,
        ["deny_plain", "probe"],
        DOMAINNAME,
        {
          engine,
        },
      );
      assert.equal(seen()[2], EPERM);
      assert.equal(denied.retval, EPERM);
      // … and a later program may clear it: the access then proceeds
      const cleared = runSysctlHook(
        loaded,
        ["deny_plain", "forgive"],
        DOMAINNAME,
        {
          engine,
        },
      );
      assert.deepEqual(cleared.verdicts, [0, 1]);
      assert.equal(cleared.retval, 0);
      assert.deepEqual(cleared.written, new TextEncoder().encode("foo"));
    });
    await t.step(
      "a positive retval is the syscall's result; no replacement (6.18.44: write returned 1)",
      () => {
        const r = runSysctlHook(loaded, "replace_one", DOMAINNAME, { engine });
        assert.equal(r.retval, 1);
        assert.equal(r.proceeds, false);
        assert.equal(r.replaced, false);
        assert.equal(r.written, undefined);
      },
    );
  });
}

Deno.test("cgroupProgDone() and the retval helpers follow bpf_prog_run_array_cg()", () => {
  const run = new CgroupRunCtx(0);
  const helpers = cgroupRetvalHelpers(run);
  const env = { mem: new AddressSpace(), now: () => 0, owner: undefined };
  const call = (id: number, r1 = 0n) =>
    Number(callHelper(helpers, id, [r1], env));
  assert.equal(call(186), 0);
  // set_retval takes an int: the low 32 bits of r1, sign-extended on get
  assert.equal(call(187, 0x7fffffff_fffffff0n), 0);
  assert.equal(call(186), EBUSY);
  cgroupProgDone(run, 0n); // already an error: kept
  assert.equal(run.retval, EBUSY);
  run.retval = 5;
  cgroupProgDone(run, 0x100000000n); // func_ret is u32: 0 → -EPERM
  assert.equal(run.retval, EPERM);
  // with ret_flags: bit 0 is the verdict, the rest are flags
  const egress = new CgroupRunCtx(0);
  assert.equal(cgroupProgDone(egress, 3n, true), 1);
  assert.equal(egress.retval, 0);
  assert.equal(cgroupProgDone(egress, 2n, true), 1);
  assert.equal(egress.retval, EPERM);
  assert.equal(isErrValue(-4095), true);
  assert.equal(isErrValue(-4096), false);
  // getsockopt starts from the kernel's own error
  assert.equal(new CgroupRunCtx(-92).retval, -92);
});

Deno.test("the sysctl hook takes cgroup_sysctl programs only; its ctx refuses what the verifier does", () => {
  const loaded = load("retval.o");
  assert.throws(
    () => runSysctlHook(loaded, "sockopt_forgive", DOMAINNAME),
    (e) => e instanceof TestRunError && e.errno === 22,
  );
  // verified (the default), the store to the read-only `write` field is
  // refused as the kernel refuses it; unverified, it faults on the ctx
  assert.throws(
    () => runSysctlHook(load("sysctl_bad.o"), "bad_write_flag", DOMAINNAME),
    (e) =>
      e instanceof ProgramRejectedError &&
      e.result.message === "invalid bpf_context access off=0 size=4",
  );
  assert.throws(
    () =>
      runSysctlHook(
        load("sysctl_bad.o", false),
        "bad_write_flag",
        DOMAINNAME,
      ),
    (e) => e instanceof MemoryFault && e.insnIndex === 1,
  );
  assert.throws(
    () => runSysctlHook(loaded, "probe", { ...DOMAINNAME, name: "a//b" }),
    TestRunError,
  );
  // find_attach_entry(): the same program cannot be attached twice
  assert.throws(
    () => runSysctlHook(loaded, ["probe", "forgive", "probe"], DOMAINNAME),
    (e) => e instanceof TestRunError && e.errno === 22,
  );
});

// The oracle's kernel has no CONFIG_RC_CORE (no lirc_mode2 programs), so
// lirc.o is bpfsim-only; its verdicts follow lirc_mode2_is_valid_access():
// the u32 sample at offset 0, read whole, is the whole context.
Deno.test("lirc_mode2: the verifier lets a program read its u32 sample, nothing else", () => {
  for (const prog of ["decode", "burst"]) {
    const obj = loadObject(
      Deno.readFileSync(
        new URL(
          "../../fixtures/runtime/hooks/bpfsim_only/lirc.o",
          import.meta.url,
        ),
      ),
      "lirc.o",
    );
    const p = obj.programs.find((q) => q.name === prog)!;
    assert.equal(verifyProgram(obj, p).verdict, "accept", prog);
  }
  assert.equal(ctxAccess("lirc_mode2", 0, 4, "read").ok, true);
  assert.equal(ctxAccess("lirc_mode2", 0, 4, "write").ok, false);
  assert.equal(ctxAccess("lirc_mode2", 0, 2, "read").ok, false);
  assert.equal(ctxAccess("lirc_mode2", 4, 4, "read").ok, false);
});

for (const engine of ENGINES) {
  Deno.test(`[${engine}] lirc_mode2 reports to the rc device as bpf-lirc.c does`, () => {
    const loaded = load("bpfsim_only/lirc.o");
    const dev = new RcDevice();
    const pulse = runLircProgram(loaded, "decode", LIRC_MODE2.PULSE | 560, {
      dev,
      engine,
    });
    assert.equal(pulse.retval, 0);
    assert.deepEqual(pulse.events, [
      { kind: "keydown", protocol: 9, scancode: 560n, toggle: 1 },
    ]);
    const space = runLircProgram(loaded, "decode", LIRC_MODE2.SPACE | 1690, {
      dev,
      engine,
    });
    assert.deepEqual(space.events, [{ kind: "repeat" }]);
    const timeout = runLircProgram(
      loaded,
      "decode",
      LIRC_MODE2.TIMEOUT | 7,
      { dev, engine },
    );
    assert.equal(timeout.retval, 1);
    assert.deepEqual(timeout.events, [{ kind: "pointer_rel", x: -3, y: 7 }]);
    const freq = runLircProgram(
      loaded,
      "decode",
      LIRC_MODE2.FREQUENCY | 38000,
      {
        dev,
        engine,
      },
    );
    assert.equal(freq.retval, 2);
    assert.deepEqual(freq.events, []);
    assert.equal(dev.events.length, 3);
    const burst = runLircProgram(loaded, "burst", 0x01000230, { engine });
    assert.equal(burst.retval, 0);
    assert.deepEqual(burst.events, [
      { kind: "keydown", protocol: 1, scancode: 0x100000002n, toggle: 0 },
      { kind: "keydown", protocol: 2, scancode: 0x01000230n, toggle: 1 },
      { kind: "repeat" },
    ]);
    // each run unmaps its sample
    assert.equal(liveRegions(loaded, "lirc sample"), 0);
    // a lirc program cannot run on the sysctl hook
    assert.throws(
      () => runSysctlHook(loaded, "decode", DOMAINNAME),
      TestRunError,
    );
  });
}
