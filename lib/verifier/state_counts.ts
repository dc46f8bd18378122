/**
 * The verifier's bookkeeping of explored states: how many paths from a
 * checkpoint are still running (`branches`), the checkpoints evicted from
 * the explored list while still referenced (`free_list_size`), and the
 * peak number of states (`peak_states` in the log's statistics).
 * @module
 */
import type { Env } from "./env.ts";
import type { VerifierState } from "./state.ts";

/** Evicted checkpoints still running (`free_list_size`), per load. */
const FREE_LIST = new WeakMap<Env, { size: number }>();

/** The evicted-checkpoint counter of `env`'s load. */
export function evictedCount(env: Env): { size: number } {
  let f = FREE_LIST.get(env);
  if (!f) FREE_LIST.set(env, f = { size: 0 });
  return f;
}

/** Mirrors `update_peak_states()`. */
export function updatePeakStates(env: Env): void {
  const n = env.liveStates + evictedCount(env).size;
  if (n > env.peakStates) env.peakStates = n;
}

/** Mirrors `update_branch_counts()`: one path from `vs` has finished. */
export function updateBranchCounts(env: Env, vs: VerifierState): void {
  let st = vs.parent;
  while (st) {
    st.branches--;
    if (st.branches > 0) break;
    // maybe_free_verifier_state(): an evicted state is released now
    if (st.evicted) evictedCount(env).size--;
    st = st.state.parent;
  }
}
