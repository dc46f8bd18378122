/**
 * BPF iterators (kernel/bpf/bpf_iter.c, map_iter.c): attaching an
 * `SEC("iter/bpf_map_elem")` program to a map (`bpf_iter_attach_map()`),
 * opening the iterator (`bpf_iter_new_fd()`: a new seq_file and session)
 * and reading it (`bpf_seq_read()`), which runs the program once per map
 * element with `struct bpf_iter__bpf_map_elem { meta, map, key, value }`
 * and once more, at the end, with key and value NULL. {@link readIterator}
 * is what `cat` of the iterator prints.
 *
 * The simulated machine: the program runs on one CPU through
 * `runInContext()` (test_run.ts), with the kernel's helpers and the seq
 * helpers (seq_helpers.ts) bound to this iterator's seq_file. The context,
 * `struct bpf_iter_meta` and the key are read-only regions; the seq_file
 * is an opaque region (its fields are not modelled: loads fault). Only the
 * `bpf_map_elem` target runs: `bpf_map` and `task` would need the layouts
 * of `struct bpf_map` and `struct task_struct`, which bpfsim does not have.
 * @module
 */
import { regionAddress, type RegionKind } from "../../../exec/memory.ts";
import type { Insn } from "../../../isa/insn.ts";
import { mapElemCursor, type MapIterElem } from "./bpf_iter_map.ts";
import { roundUp8 } from "../../maps/map.ts";
import { findProgram, type LoadedObject } from "../../object_loader.ts";
import { verifiedProgram } from "../../object_runtime.ts";
import { runInContext, type TestRunOptions } from "../../test_run.ts";
import { IterSeqRead, type SeqIterOps } from "./bpf_iter_read.ts";
import { seqHelpers } from "./seq_helpers.ts";
import { MAP_TYPE } from "../../../uapi/bpf.ts";
import { EACCES, EBADF, EINVAL, ENOTSUPP } from "../../../uapi/errno.ts";

/** Where an iterator is attached: the map a `bpf_map_elem` program walks. */
export interface IterAttachSpec {
  /** Name of the map in the loaded object (`linfo.map.map_fd`). */
  readonly map?: string;
}

/** Options of {@link attachIterator} and {@link readIterator}. */
export interface IterOptions
  extends Pick<TestRunOptions, "engine" | "cpu" | "maxSteps"> {
  /** Verify the program first, as `BPF_PROG_LOAD` does (default true). */
  readonly verify?: boolean;
}

/** An attach the kernel refuses (`BPF_LINK_CREATE`): carries the errno. */
export class IterAttachError extends Error {
  /** Positive errno. */
  readonly errno: number;
  /** Builds the error. */
  constructor(message: string, errno: number) {
    super(message);
    this.name = "IterAttachError";
    this.errno = errno;
  }
}

/** Map types with a `bpf_map_elem` iterator (`bpf_iter_attach_map()`). */
const ITER_MAP_TYPES: readonly number[] = [
  MAP_TYPE.hash,
  MAP_TYPE.lru_hash,
  MAP_TYPE.array,
  MAP_TYPE.percpu_hash,
  MAP_TYPE.lru_percpu_hash,
  MAP_TYPE.percpu_array,
];
const PERCPU_TYPES: readonly number[] = [
  MAP_TYPE.percpu_hash,
  MAP_TYPE.lru_percpu_hash,
  MAP_TYPE.percpu_array,
];

/** `atomic64_t session_id` of bpf_iter.c, per simulated kernel. */
const SESSION_IDS = new WeakMap<object, bigint>();

/** An attached iterator (`struct bpf_iter_link`). */
export class IterLink {
  /** The object the program belongs to. */
  readonly loaded: LoadedObject;
  /** The program's name. */
  readonly program: string;
  /** The map walked. */
  readonly mapName: string;
  private readonly opts: IterOptions;
  private readonly rewritten: readonly Insn[] | undefined;

  /** Use {@link attachIterator}. */
  constructor(
    loaded: LoadedObject,
    program: string,
    mapName: string,
    opts: IterOptions,
    rewritten: readonly Insn[] | undefined,
  ) {
    this.loaded = loaded;
    this.program = program;
    this.mapName = mapName;
    this.opts = opts;
    this.rewritten = rewritten;
  }

  /** `bpf_iter_new_fd()`: a new seq_file, session id and walk. */
  open(): IterSeqRead<MapIterElem> {
    const { kernel } = this.loaded;
    const sessionId = (SESSION_IDS.get(kernel) ?? 0n) + 1n;
    SESSION_IDS.set(kernel, sessionId);
    const lm = this.loaded.maps.find((m) => m.name === this.mapName)!;
    const map = lm.map!;
    const space = kernel.space;
    const nrCpus = kernel.cpus.length;
    const region = (
      kind: RegionKind,
      size: number,
      name: string,
      write = false,
    ) => {
      const bytes = new Uint8Array(size);
      const address = space.mapRegion(kind, bytes, { name, write });
      return { address, bytes, view: new DataView(bytes.buffer) };
    };
    // the seq_file: a pointer the program hands back to the seq helpers
    const seqAddr = regionAddress(
      space.mapRegionId("kernel", 8, {
        name: "seq_file",
        read: false,
        write: false,
      }),
    );
    const meta = region("kernel", 24, "bpf_iter_meta");
    const ctx = region("ctx", 32, "bpf_iter__bpf_map_elem");
    const key = region("map_key", map.attr.keySize, `${lm.name} iter key`);
    const percpu = region(
      "percpu",
      PERCPU_TYPES.includes(lm.typeId)
        ? roundUp8(map.attr.valueSize) * nrCpus
        : 8,
      "percpu_value_buf",
      true,
    );
    meta.view.setBigUint64(0, seqAddr, true);
    meta.view.setBigUint64(8, sessionId, true);
    ctx.view.setBigUint64(0, meta.address, true);
    ctx.view.setBigUint64(8, lm.address, true);
    const cursor = mapElemCursor(map, space, nrCpus, percpu);
    // mirrors __bpf_{array,hash}_map_seq_show() + bpf_iter_run_prog()
    const run = (elem: MapIterElem | null): number => {
      meta.view.setBigUint64(16, reader.seqNum, true);
      if (elem !== null) key.bytes.set(elem.key);
      ctx.view.setBigUint64(16, elem === null ? 0n : key.address, true);
      ctx.view.setBigUint64(24, elem === null ? 0n : elem.value, true);
      const result = runInContext(this.loaded, this.program, {
        r1: ctx.address,
        helpers: seqHelpers(
          (a) => a === seqAddr ? reader.seq : undefined,
          this.loaded.object.btf,
        ),
        release: () => {},
      }, { ...this.opts, rewritten: this.rewritten });
      reader.runs++;
      reader.printk.push(...result.printk);
      // "bpf program can only return 0 or 1": anything else is -EAGAIN
      return result.r0 === 0n ? 0 : -11;
    };
    const ops: SeqIterOps<MapIterElem> = {
      start: (pos) => cursor.start(pos),
      next: (_v, pos) => cursor.next(pos),
      show: (v) => run(v),
      stop: (v) => {
        // the final call, unless an earlier read already made it (done_stop)
        if (v === null && !reader.doneStop) run(null);
      },
    };
    // the closures above run only once the reader exists
    const reader: IterSeqRead<MapIterElem> = new IterSeqRead(
      sessionId,
      ops,
      () => {
        for (const r of [seqAddr, meta.address, ctx.address, key.address]) {
          space.unmapRegion(r);
        }
        space.unmapRegion(percpu.address);
      },
    );
    return reader;
  }
}

/**
 * `bpf_program__attach_iter()`: attaches program `name` (an
 * `iter/bpf_map_elem` program) of `loaded` to map `spec.map`, with the
 * checks of `bpf_iter_attach_map()`. Throws {@link IterAttachError} (or
 * `ProgramRejectedError` when verification rejects the program).
 */
export function attachIterator(
  loaded: LoadedObject,
  name: string,
  spec: IterAttachSpec,
  opts: IterOptions = {},
): IterLink {
  const prog = findProgram(loaded, name);
  if (prog.type !== "tracing" || prog.expectedAttachType !== "trace_iter") {
    throw new IterAttachError(`program '${name}' is not an iterator`, EINVAL);
  }
  if (prog.attachTarget !== "bpf_map_elem") {
    throw new IterAttachError(
      `iterator target '${prog.attachTarget}' is not modelled by bpfsim (only bpf_map_elem)`,
      ENOTSUPP,
    );
  }
  let rewritten: readonly Insn[] | undefined;
  let bufAccess = { rdonly: 0, rdwr: 0 };
  if (opts.verify ?? true) {
    const verified = verifiedProgram(loaded, name);
    rewritten = verified.rewritten;
    bufAccess = verified.bufAccess ?? bufAccess;
  }
  if (spec.map === undefined) {
    throw new IterAttachError("no map given (map_fd 0)", EBADF);
  }
  const lm = loaded.maps.find((m) => m.name === spec.map);
  if (lm === undefined || lm.map === null) {
    throw new IterAttachError(`no map '${spec.map}'`, EBADF);
  }
  if (!ITER_MAP_TYPES.includes(lm.typeId)) {
    throw new IterAttachError(
      `map '${spec.map}' (type ${lm.typeId}) has no element iterator`,
      EINVAL,
    );
  }
  const valueSize = PERCPU_TYPES.includes(lm.typeId)
    ? roundUp8(lm.map.attr.valueSize) * loaded.kernel.cpus.length
    : lm.map.attr.valueSize;
  if (bufAccess.rdonly > lm.map.attr.keySize || bufAccess.rdwr > valueSize) {
    throw new IterAttachError(
      `program reads ${bufAccess.rdonly} key / ${bufAccess.rdwr} value bytes; ` +
        `map '${spec.map}' has ${lm.map.attr.keySize} / ${valueSize}`,
      EACCES,
    );
  }
  return new IterLink(loaded, name, spec.map, opts, rewritten);
}

/** What {@link readIterator} read. */
export interface IterReadResult {
  /** Every byte read, in order. */
  readonly bytes: Uint8Array;
  /** `bytes` as Latin-1 text. */
  readonly text: string;
  /** Each `read()`'s return: a byte count, 0 at the end, or a negative errno last. */
  readonly reads: readonly number[];
  /** 0, or the negative errno the last read returned (`cat` reports it). */
  readonly errno: number;
  /** The session's `meta->session_id`. */
  readonly sessionId: bigint;
  /** Times the program ran. */
  readonly runs: number;
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: readonly string[];
}

/** `cat`'s read size: coreutils' 128 KiB `IO_BUFSIZE`. */
export const CAT_READ_SIZE = 128 * 1024;

/**
 * What `cat` of the iterator prints: attaches, opens one session and
 * reads `readSize` bytes at a time (default {@link CAT_READ_SIZE}) until a
 * read returns 0 or an error (at most `maxReads`, default 1000).
 */
export function readIterator(
  loaded: LoadedObject,
  name: string,
  spec: IterAttachSpec,
  opts: IterOptions & {
    readonly readSize?: number;
    readonly maxReads?: number;
  } = {},
): IterReadResult {
  const reader = attachIterator(loaded, name, spec, opts).open();
  const chunks: Uint8Array[] = [];
  const reads: number[] = [];
  try {
    for (let i = 0; i < (opts.maxReads ?? 1000); i++) {
      const got = reader.read(opts.readSize ?? CAT_READ_SIZE);
      if (typeof got === "number") {
        reads.push(got);
        break;
      }
      reads.push(got.length);
      if (got.length === 0) break;
      chunks.push(got);
    }
  } finally {
    reader.close();
  }
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  const last = reads[reads.length - 1] ?? 0;
  return {
    bytes,
    text: String.fromCharCode(...bytes),
    reads,
    errno: last < 0 ? last : 0,
    sessionId: reader.sessionId,
    runs: reader.runs,
    printk: reader.printk,
  };
}
