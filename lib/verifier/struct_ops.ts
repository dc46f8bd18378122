/**
 * What the verifier does for struct_ops programs besides their context
 * rule (ctx_access/struct_ops.ts): `check_struct_ops_btf_id()` before the
 * main pass, and the void members' exit (`check_return_code()` does not
 * look at R0 for a member returning void).
 *
 * Only `tcp_congestion_ops` is modelled; a struct_ops program of another
 * type is verified without these steps (and refused at its first context
 * access, having no rule).
 * @module
 */
import { EINVAL, ENOTSUPP, type Env } from "./env.ts";
import {
  structOpsMemberProto,
  TCP_CONGESTION_OPS_MEMBERS,
} from "./ctx_access/struct_ops.ts";

/** The modelled struct_ops types, by struct name. */
const MODELLED = new Set(["tcp_congestion_ops"]);

/**
 * Mirrors `check_struct_ops_btf_id()` (with libbpf's match of the object's
 * member to the kernel's by name before it): the refusal as
 * `[errno, line]` (`line` "" when the kernel logs nothing), or undefined
 * when the program may be verified.
 */
export function checkStructOpsBtfId(
  env: Env,
): [number, string] | undefined {
  if (!env.gplCompatible) {
    return [
      EINVAL,
      "struct ops programs must have a GPL compatible license",
    ];
  }
  // no .struct_ops map fills a member with it: libbpf loads it without
  // attach_btf_id
  const so = env.prog.structOps;
  if (so === undefined) return [ENOTSUPP, ""];
  if (!MODELLED.has(so.structName)) return undefined;
  if (!TCP_CONGESTION_OPS_MEMBERS.includes(so.member)) {
    // libbpf's bpf_map__init_kern_struct_ops() fails before BPF_PROG_LOAD
    return [
      ENOTSUPP,
      `struct_ops init_kern ${so.map}: Cannot find member ${so.member} in kernel BTF`,
    ];
  }
  if (structOpsMemberProto(so.structName, so.member) === undefined) {
    return [
      EINVAL,
      `attach to invalid member ${so.member}(@idx ${
        TCP_CONGESTION_OPS_MEMBERS.indexOf(so.member)
      }) of struct ${so.structName}`,
    ];
  }
  // bpf_struct_ops_supported(): tcp_congestion_ops has no cfi stub for get_info
  if (so.member === "get_info") {
    return [
      ENOTSUPP,
      `attach to unsupported member ${so.member} of struct ${so.structName}`,
    ];
  }
  return undefined;
}

/**
 * True when the program implements a modelled struct_ops member returning
 * void: `check_return_code()` returns before reading R0.
 */
export function structOpsReturnsVoid(env: Env): boolean {
  if (env.progType !== "struct_ops") return false;
  const so = env.prog.structOps;
  return structOpsMemberProto(so?.structName, so?.member)?.ret.kind === "void";
}
