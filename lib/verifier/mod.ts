/**
 * The verifier's public surface: verifying programs and objects (verdict,
 * the kernel-format log, explanations), the program as rewritten after
 * verification, the register types, and the kfuncs the verifier models.
 * @module
 */
export {
  assertAccepted,
  VerifierError,
  verifyObject,
  type VerifyOptions,
  verifyProgram,
  type VerifyResult,
} from "./verify.ts";
export {
  fixupKfuncCalls,
  removeDeadCode,
  type StructMetaAddress,
  type XlatedProgram,
} from "./fixup.ts";
export { kfuncCallName, xlatedLines } from "./xlated.ts";
export { type KfuncAux } from "./check_kfunc.ts";
export {
  KF_ACQUIRE,
  KF_RCU,
  KF_RELEASE,
  KF_RET_NULL,
  KF_SLEEPABLE,
  KF_TRUSTED_ARGS,
  kfuncAllowed,
  type KfuncArg,
  type KfuncArgKind,
  type KfuncDesc,
  type KfuncRet,
  KFUNCS,
  type KfuncSet,
} from "./kfunc_table.ts";
export { regTypeStr } from "./reg_types.ts";
