/**
 * Where the simulated kernel keeps a program's `struct btf_struct_meta`s:
 * the verifier's rewriting passes their addresses to the graph kfuncs
 * (`bpf_obj_new_impl(size, meta)` …), which read the special-field record
 * back from them. One address per program-BTF type id, in a kernel range
 * no BPF-visible region uses.
 * @module
 */

/** Base of the struct-meta range (a kernel text-like address). */
export const STRUCT_META_BASE = 0xffffffffa1000000n;
/** Bytes reserved per meta (`sizeof(struct btf_struct_meta)` rounded). */
const STRIDE = 0x40n;

/** The address of type `typeId`'s struct meta (0 for type 0: none). */
export function structMetaAddress(typeId: number): bigint {
  return typeId ? STRUCT_META_BASE + BigInt(typeId) * STRIDE : 0n;
}

/** The type id whose struct meta lives at `addr`, or undefined. */
export function structMetaTypeId(addr: bigint): number | undefined {
  const off = BigInt.asUintN(64, addr) - STRUCT_META_BASE;
  if (off <= 0n || off % STRIDE !== 0n || off / STRIDE > 0xffffffffn) {
    return undefined;
  }
  return Number(off / STRIDE);
}
