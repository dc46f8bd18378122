/**
 * `bpf_skb_output` and `bpf_xdp_output` (net/core/filter.c
 * `bpf_skb_event_output()`, `bpf_xdp_event_output()`): the
 * `bpf_perf_event_output` of BTF-typed tracing programs handed a kernel
 * `struct sk_buff *` / `struct xdp_buff *` (sim_skb.ts). Bits 32–51 of
 * the flags (`BPF_F_CTXLEN_MASK`) ask for that many bytes of the packet,
 * from its start, after the program's data in the same record.
 *
 * The order of the checks is the kernel's: -EINVAL for flags beyond the
 * index and the packet length; -EFAULT for a NULL object or a length past
 * the packet (`skb->len`, `xdp_get_buff_len()`); then
 * `bpf_event_output()` → `__bpf_perf_event_output()` on the perf event
 * array: `BPF_F_CURRENT_CPU` names the running CPU's slot, -E2BIG past
 * the array, and the slot as generic_helpers_perf.ts models it (empty,
 * -ENOENT, unless the print log has `perfOutput`: then slot `i` is CPU
 * `i`'s reader, -EOPNOTSUPP from another CPU). A record a reader gets is
 * the data followed by the packet bytes (`perf_raw_record` with one
 * `perf_raw_frag`). The `-EBUSY` of a fourth nested output cannot happen
 * here: a helper never interrupts another.
 * @module
 */
import { ExecError } from "../../../exec/fault.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { BPF_F_INDEX_MASK, perfArraySlot } from "../../generic_helpers_perf.ts";
import type { ObjectHelperEnv } from "../../object_helpers.ts";
import { netObjects } from "./sim_skb.ts";
import { EFAULT, EINVAL, ENOENT, EOPNOTSUPP } from "../../../uapi/errno.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const SKB_OUTPUT_HELPER = {
  skb_output: 111,
  xdp_output: 121,
} as const;

/** `BPF_F_CTXLEN_MASK`: bits 32–51, the packet bytes to append. */
export const BPF_F_CTXLEN_MASK = 0xfffffn << 32n;

/** A packet object as the two helpers need it: its length and data. */
interface PacketSource {
  readonly len: number;
  readonly data: bigint;
}

/** `bpf_skb_output` and `bpf_xdp_output` of the object, by id. */
export function skbOutputHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  const objects = netObjects(env.loaded.kernel);
  const H = SKB_OUTPUT_HELPER;
  // the verifier passes only the struct it was given (ARG_PTR_TO_BTF_ID):
  // any other address comes from an unverified program
  const unknown = (vm: CallContext, what: string): never => {
    throw new ExecError(
      vm.insnIndex,
      `R1: 0x${vm.arg(1).toString(16)} is not ${what} bpfsim models`,
    );
  };
  return new Map<number, HelperFn>([
    [H.skb_output, (vm) =>
      eventOutput(
        env,
        vm,
        (a) => a === 0n ? null : objects.skbAt(a) ?? unknown(vm, "an sk_buff"),
      )],
    [H.xdp_output, (vm) =>
      eventOutput(
        env,
        vm,
        (a) =>
          a === 0n ? null : objects.xdpBuffAt(a) ?? unknown(vm, "an xdp_buff"),
      )],
  ]);
}

/**
 * Mirrors `bpf_skb_event_output()` / `bpf_xdp_event_output()` (they
 * differ only in the object) and `bpf_event_output()`.
 */
function eventOutput(
  env: ObjectHelperEnv,
  vm: CallContext,
  objectAt: (address: bigint) => PacketSource | null,
): number {
  const flags = vm.arg(3);
  const ctxLen = (flags & BPF_F_CTXLEN_MASK) >> 32n;
  if (flags & ~(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK)) return -EINVAL;
  const obj = objectAt(vm.arg(1));
  if (obj === null || ctxLen > BigInt(obj.len)) return -EFAULT;
  // __bpf_perf_event_output(): the index is the flags' low 32 bits
  const slot = perfArraySlot(
    env.loaded,
    vm,
    vm.arg(2),
    flags & BPF_F_INDEX_MASK,
  );
  if (typeof slot === "number") return slot;
  const readers = env.log.perfOutput;
  if (readers === undefined) return -ENOENT;
  if (slot.index !== BigInt(slot.cpu)) return -EOPNOTSUPP;
  const meta = vm.mem.readBytes(vm.arg(4), Number(vm.arg(5)), vm.insnIndex);
  // bpf_skb_copy() / bpf_xdp_copy(): the packet from offset 0, linear
  const packet = vm.mem.readBytes(obj.data, Number(ctxLen), vm.insnIndex);
  const data = new Uint8Array(meta.length + packet.length);
  data.set(meta);
  data.set(packet, meta.length);
  readers.push({ map: slot.map, cpu: slot.cpu, data });
  return 0;
}
