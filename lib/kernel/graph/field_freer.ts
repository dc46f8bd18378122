/**
 * The {@link FieldFreer} maps call from `bpf_obj_free_fields()`, backed by
 * the graph runtime: kptrs to program objects are dropped, lists and
 * rb-trees drained. Frees go to the CPU of the runtime's last kfunc call
 * (maps name none).
 * @module
 */
import { BPF_KPTR_PERCPU, type BtfField } from "../../btf/field_types.ts";
import { ExecError } from "../../exec/fault.ts";
import type { FieldFreer } from "../maps/special_fields.ts";
import { listHeadFree } from "./list.ts";
import type { GraphRuntime } from "./objects.ts";
import { rbRootFree } from "./rbtree.ts";

/**
 * A {@link FieldFreer} over `rt`. Kernel-object kptrs (task, cgroup …) and
 * timers / work items are not modelled: they throw an {@link ExecError}.
 */
export function graphFieldFreer(rt: GraphRuntime): FieldFreer {
  return {
    dropKptr(pointer: bigint, field: BtfField): void {
      const kptr = field.kptr;
      if (kptr === undefined || kptr.kernel) {
        throw new ExecError(
          -1,
          "dropping a kernel-object kptr is not modelled",
        );
      }
      // mirrors bpf_obj_free_fields(): the pointee's struct meta, if any
      const rec = rt.env.metas?.get(kptr.btfId) ?? null;
      const percpu = field.type === BPF_KPTR_PERCPU;
      rt.objDrop(
        rt.cpu,
        pointer,
        "bpf_obj_free_fields",
        percpu ? null : rec,
        percpu,
      );
    },
    drainList(headAddr: bigint, field: BtfField): void {
      listHeadFree(rt, rt.cpu, field, headAddr);
    },
    drainRbRoot(rootAddr: bigint, field: BtfField): void {
      rbRootFree(rt, rt.cpu, field, rootAddr);
    },
    cancelAndFree(): void {
      throw new ExecError(-1, "timers and work items are not modelled");
    },
  };
}
