// Throughput of the scalar abstract domain: adjust_scalar_min_max_vals with
// its reg_bounds_sync (every ALU instruction) and reg_set_min_max (both sides
// of every undecided conditional jump). Each iteration runs 100 operations,
// so ops/s = 100 x iter/s.
import { regBoundsSync } from "../lib/verifier/bounds_sync.ts";
import { isScalarBranchTaken, regSetMinMax } from "../lib/verifier/branch.ts";
import {
  constScalar,
  copyScalar,
  type Scalar,
  unknownScalar,
} from "../lib/verifier/scalar.ts";
import {
  adjustScalarImm,
  adjustScalarMinMaxVals,
  type ScalarAluOp,
} from "../lib/verifier/scalar_alu.ts";
import { tnum } from "../lib/verifier/tnum.ts";

/** A few typical register states: masked, signed range, tnum-only, unknown, constant. */
function sample(): Scalar[] {
  const masked = unknownScalar();
  adjustScalarImm(masked, "and", 0xfff, true);
  const signed = unknownScalar();
  signed.smin = -100n;
  signed.smax = 5000n;
  regBoundsSync(signed);
  const bits = unknownScalar();
  bits.varOff = tnum(0xe00n, 0x100n);
  regBoundsSync(bits);
  return [masked, signed, bits, unknownScalar(), constScalar(42n)];
}
const regs = sample();
const four = constScalar(4n);
const MIX: [ScalarAluOp, boolean][] = [
  ["add", true],
  ["sub", true],
  ["and", false],
  ["or", true],
  ["lsh", true],
  ["add", false],
  ["xor", true],
  ["rsh", true],
];

Deno.bench("adjust_scalar_min_max_vals, mixed ALU ops (x100)", {
  group: "scalar",
  baseline: true,
}, () => {
  for (let i = 0; i < 100; i++) {
    const dst = copyScalar(regs[i % 5]);
    const [op, alu64] = MIX[i & 7];
    const src = op === "lsh" || op === "rsh" ? four : regs[(i + 1) % 5];
    adjustScalarMinMaxVals(dst, src, op, alu64);
  }
});

Deno.bench(
  "adjust_scalar_min_max_vals, mul (x100)",
  { group: "scalar" },
  () => {
    for (let i = 0; i < 100; i++) {
      const dst = copyScalar(regs[i % 5]);
      adjustScalarMinMaxVals(dst, regs[(i + 2) % 5], "mul", true);
    }
  },
);

Deno.bench("reg_bounds_sync (x100)", { group: "scalar" }, () => {
  for (let i = 0; i < 100; i++) regBoundsSync(copyScalar(regs[i % 5]));
});

Deno.bench("is_branch_taken + reg_set_min_max vs imm (x100)", {
  group: "scalar",
}, () => {
  for (let i = 0; i < 100; i++) {
    const r = regs[i % 5];
    const k = constScalar(BigInt(i * 37));
    const op = i & 1 ? "jlt" : "jsgt";
    const jmp32 = (i & 2) === 2;
    if (isScalarBranchTaken(r, k, op, jmp32) !== -1) continue;
    regSetMinMax(copyScalar(r), copyScalar(k), copyScalar(r), k, op, jmp32);
  }
});
