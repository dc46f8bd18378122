/**
 * BPF rb-trees (`bpf_rbtree_add_impl`, `bpf_rbtree_first`,
 * `bpf_rbtree_remove`, `bpf_rbtree_root/left/right`, `bpf_rb_root_free()`)
 * on `struct bpf_rb_node_kern` / `struct rb_root_cached` words in simulated
 * memory. `less` is a BPF subprogram, called back through
 * {@link BpfCallbacks} once per level on the way down, as
 * `__bpf_rbtree_add()` does.
 *
 * Without the root's lock (a program the verifier would have rejected, run
 * with verification off) add and remove are split where another CPU can
 * come in between, as list operations are (list.ts): the add walks down,
 * yields, then links the node where it found room; the remove checks the
 * owner, yields, then erases. What another CPU changed in between is
 * overwritten or erased twice: nodes go missing, `rb_leftmost` goes stale,
 * objects are dropped twice — what the sanitizer and the leak check report.
 * @module
 */
import type { BtfField } from "../../btf/field_types.ts";
import { ExecError } from "../../exec/fault.ts";
import type { CallContext } from "../../exec/state.ts";
import { EINVAL } from "../../uapi/errno.ts";
import {
  nodeOffset,
  nodeOffsetOrZero,
  takeRacing,
  yieldRacing,
} from "./list.ts";
import type { GraphRuntime } from "./objects.ts";
import {
  BPF_PTR_POISON,
  GraphCorruption,
  px,
  RB_NODE_OWNER,
  rbClearNode,
  readWord,
  writeWord,
} from "./layouts.ts";
import { RbTree } from "./rb_core.ts";

const OWNER = BigInt(RB_NODE_OWNER);
/** Most nodes a free walk visits before calling the tree a loop. */
export const MAX_RB_WALK: number = 1 << 22;

/**
 * Mirrors __bpf_rbtree_add(): 0, or -EINVAL (object dropped) when the node
 * already has an owner. `less` (r3 of the call) is a callback address.
 */
export function rbtreeAdd(
  rt: GraphRuntime,
  vm: CallContext,
  cpu: number,
  root: bigint,
  node: bigint,
  less: bigint,
  off: bigint,
  site: string,
): number {
  const space = rt.space;
  const pending = takeRacing(rt, "rb_add");
  if (pending !== undefined) {
    // the retried call links the node where the walk found room before
    // the CPU was interrupted — room another CPU may have taken since
    new RbTree(space, root).insert(
      pending.entry,
      pending.parent,
      pending.asLeft,
      pending.leftmost,
    );
    writeWord(space, node + OWNER, root);
    if (rt.tracing) rt.event("push", pending.object, `rbtree ${px(root)}`);
    return 0;
  }
  if (readWord(space, node + OWNER) !== 0n) {
    const { offset, record } = nodeOffset(rt, node, off);
    rt.objDrop(cpu, node - offset, site, record);
    return -EINVAL;
  }
  const callbacks = rt.env.callbacks;
  if (callbacks === undefined) {
    throw new ExecError(
      -1,
      "bpf_rbtree_add_impl: no callback table to call 'less'",
    );
  }
  writeWord(space, node + OWNER, BPF_PTR_POISON);
  const tree = new RbTree(space, root);
  let parent = 0n;
  let link = tree.top();
  let asLeft = true;
  let leftmost = true;
  for (let depth = 0; link !== 0n; depth++) {
    if (depth > 128) {
      throw new GraphCorruption(
        `rb-tree ${px(root)} is deeper than any balanced tree`,
      );
    }
    parent = link;
    if (callbacks.call(vm, less, [node, parent, 0n, 0n, 0n]) !== 0n) {
      link = tree.left(parent);
      asLeft = true;
    } else {
      link = tree.right(parent);
      asLeft = false;
      leftmost = false;
    }
  }
  if (rt.unlocked(root)) {
    const object = node - nodeOffsetOrZero(rt, node, off);
    yieldRacing(rt, {
      kind: "rb_add",
      entry: node,
      parent,
      asLeft,
      leftmost,
      object,
    });
    return 0;
  }
  tree.insert(node, parent, asLeft, leftmost);
  writeWord(space, node + OWNER, root);
  if (rt.tracing) traceNode(rt, "push", node, off, root);
  return 0;
}

/** Mirrors bpf_rbtree_first(): `rb_leftmost`, or 0n. */
export function rbtreeFirst(rt: GraphRuntime, root: bigint): bigint {
  return new RbTree(rt.space, root).leftmost();
}

/**
 * Mirrors bpf_rbtree_remove(): the node taken out of `root`, or 0n if
 * `root` does not own it. Without the root's lock the owner check and the
 * erase are split by a yield, as in {@link listDel}: two CPUs may both pass
 * the check and erase (and later drop) the same node.
 */
export function rbtreeRemove(
  rt: GraphRuntime,
  root: bigint,
  node: bigint,
): bigint {
  const pending = takeRacing(rt, "rb_remove");
  if (pending === undefined) {
    if (readWord(rt.space, node + OWNER) !== root) return 0n;
    if (rt.unlocked(root)) {
      const object = node - nodeOffsetOrZero(rt, node, 0n);
      yieldRacing(rt, {
        kind: "rb_remove",
        entry: node,
        parent: 0n,
        asLeft: false,
        leftmost: false,
        object,
      });
      return 0n;
    }
  }
  new RbTree(rt.space, root).erase(node);
  rbClearNode(rt.space, node);
  writeWord(rt.space, node + OWNER, 0n);
  if (rt.tracing) traceNode(rt, "pop", node, 0n, root);
  return node;
}

/** Traces an rb-tree add or remove with the object's address. */
function traceNode(
  rt: GraphRuntime,
  ev: "push" | "pop",
  node: bigint,
  off: bigint,
  root: bigint,
): void {
  const entry = rt.objectAt(node);
  const offset = off !== 0n
    ? off
    : entry === undefined
    ? 0n
    : node - entry.address;
  rt.event(ev, node - offset, `rbtree ${px(root)}`);
}

/** Mirrors bpf_rbtree_root(). */
export function rbtreeRoot(rt: GraphRuntime, root: bigint): bigint {
  return new RbTree(rt.space, root).top();
}

/** Mirrors bpf_rbtree_left() / bpf_rbtree_right(): a child, or 0n if `root` does not own `node`. */
export function rbtreeChild(
  rt: GraphRuntime,
  root: bigint,
  node: bigint,
  right: boolean,
): bigint {
  if (readWord(rt.space, node + OWNER) !== root) return 0n;
  const tree = new RbTree(rt.space, root);
  return right ? tree.right(node) : tree.left(node);
}

/**
 * Mirrors bpf_rb_root_free(): empties the root (`RB_ROOT_CACHED`), then
 * drops every node's object in postorder with the element record.
 */
export function rbRootFree(
  rt: GraphRuntime,
  cpu: number,
  field: BtfField,
  root: bigint,
): void {
  const tree = new RbTree(rt.space, root);
  let nodes: bigint[];
  try {
    nodes = tree.postorder(MAX_RB_WALK);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new GraphCorruption(`rb-tree ${px(root)} does not end: a cycle`);
  }
  writeWord(rt.space, root, 0n);
  writeWord(rt.space, root + 8n, 0n);
  const graphRoot = field.graphRoot;
  if (graphRoot === undefined) {
    throw new ExecError(-1, "bpf_rb_root field without contains");
  }
  for (const n of nodes) {
    rt.objDrop(
      cpu,
      n - BigInt(graphRoot.nodeOffset),
      "bpf_rb_root_free",
      graphRoot.valueRecord,
    );
  }
}
