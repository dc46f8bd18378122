/**
 * `cli.ts run`: runs a program on the interpreter and prints r0.
 * @module
 */
import { ExecError, MemoryFault } from "../exec/fault.ts";
import { compileProgram } from "../exec/compile.ts";
import { runProgram } from "../exec/run.ts";
import type { Command } from "./command.ts";
import { runObject } from "./run_object.ts";
import { isElf, readProgramFile } from "./source.ts";
import {
  hex64,
  parseCommand,
  parseHex,
  parsePositiveInt,
  readInput,
  UsageError,
} from "./usage.ts";

const HELP =
  `usage: cli.ts run [--json] [--engine E] [--mem-hex HEX] [--repeat N] FILE.s
       cli.ts run [--json] [--engine E] --program NAME [--data-hex HEX] [--repeat N] [--dump-maps] [--no-verify] FILE.o

Runs a program and prints r0. Assembly (.s, .asm), a
bpf_conformance .data file or raw bytes (.bin) run under the conformance
harness contract: r1 = address of a writable copy of the input memory,
r2 = its length, r10 = top of a 512-byte stack.

An ELF object is loaded into a simulated kernel (maps created, global data
set) and program NAME runs as BPF_PROG_TEST_RUN runs it: socket filters, tc,
cgroup_skb and lwt_in/out/xmit programs on an skb built from the packet,
XDP programs on an xdp_buff, syscall programs on the bytes as their
context (other program types cannot be test-run: exit 1, as the kernel
refuses them; the API's hook runners in mod.ts run them as their hooks
would). The
program is verified first, as BPF_PROG_LOAD does: a rejection prints the
verifier's message and exits 1.

  --mem-hex HEX    input memory for r1/r2 (default: a .data file's -- mem, else none)
  --data-hex HEX   for objects: the packet or context bytes (default 64 zero bytes)
  --program NAME   for objects: which program to run
  --dump-maps      for objects: add "maps": {name: [[key_hex, value_hex], …]}
                   of the array and hash maps after the run
  --no-verify      for objects: run the program without verifying it first
                   (for teaching: what the verifier prevents then happens)
  --repeat N       run N times and report the mean time per run (ns_per_run)
  --engine E       interp (default) or jit: the same results, the JIT faster
  --json           print one JSON line: {"retval": "0x…", "steps": N[, "ns_per_run": T]}
                   (objects add "data_out_hex": the first 256 bytes of the packet)

A memory fault or a runaway program is reported with the instruction index
and exits 1.`;

/** The `run` command. */
export const runCommand: Command = {
  name: "run",
  summary: "run a program (assembly or an object, as BPF_PROG_TEST_RUN does)",
  help: HELP,
  run(args, io) {
    const { values, positionals } = parseCommand("run", args, {
      json: { type: "boolean" },
      "mem-hex": { type: "string" },
      "data-hex": { type: "string" },
      program: { type: "string" },
      repeat: { type: "string" },
      "dump-maps": { type: "boolean" },
      engine: { type: "string" },
      "no-verify": { type: "boolean" },
    });
    if (values.help) {
      io.out(HELP);
      return 0;
    }
    if (positionals.length !== 1) {
      throw new UsageError("run: expects exactly one FILE");
    }
    const file = positionals[0];
    const engine = values.engine ?? "interp";
    if (engine !== "interp" && engine !== "jit") {
      throw new UsageError(
        `run: --engine: expected interp or jit, got '${engine}'`,
      );
    }
    const repeat = typeof values.repeat === "string"
      ? parsePositiveInt("--repeat", values.repeat)
      : 0;
    if (isElf(readInput(file))) {
      return runObject({
        file,
        program: values.program as string | undefined,
        data: typeof values["data-hex"] === "string"
          ? parseHex("--data-hex", values["data-hex"])
          : undefined,
        repeat,
        dumpMaps: values["dump-maps"] === true,
        json: values.json === true,
        engine,
        verify: values["no-verify"] !== true,
      }, io);
    }
    const source = readProgramFile(file);
    const mem = typeof values["mem-hex"] === "string"
      ? parseHex("--mem-hex", values["mem-hex"])
      : source.mem;
    try {
      const compiled = compileProgram(source.insns);
      const result = runProgram(compiled, { mem, engine });
      const report: Record<string, string | number> = {
        retval: hex64(result.r0),
        steps: result.steps,
      };
      if (repeat > 0) {
        const start = performance.now();
        for (let i = 0; i < repeat; i++) runProgram(compiled, { mem, engine });
        report.ns_per_run = Math.round(
          (performance.now() - start) * 1e6 / repeat,
        );
      }
      if (values.json) io.out(JSON.stringify(report));
      else {
        io.out(
          `r0 = ${report.retval} (${result.r0}) after ${result.steps} instructions`,
        );
        if (report.ns_per_run !== undefined) {
          io.out(`${report.ns_per_run} ns per run`);
        }
      }
      return 0;
    } catch (e) {
      if (e instanceof MemoryFault || e instanceof ExecError) {
        if (values.json) io.out(JSON.stringify({ error: e.message }));
        io.err(`${file}: ${e.message}`);
        return 1;
      }
      throw e;
    }
  },
};
