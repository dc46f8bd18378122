/**
 * Runtime of the map helpers (kernel/bpf/helpers.c, ringbuf.c): a program
 * holds a map as the kernel address of its `struct bpf_map`, which the
 * {@link MapRegistry} turns back into the live map; keys and values are
 * read from (and popped values written to) the simulated address space.
 * Also `bpf_trace_printk`, recorded rather than printed.
 * @module
 */
import { ExecError } from "../exec/fault.ts";
import type { CallContext, HelperFn } from "../exec/state.ts";
import type { PerfSample } from "./generic_helpers_perf.ts";
import type { SentSignal } from "./generic_helpers_task.ts";
import type { StateOwner } from "./helpers.ts";
import type { BpfMap } from "./maps/map.ts";
import { EINVAL } from "./maps/map.ts";
import { QueueStackMap } from "./maps/queue_stack.ts";
import { RingBuf } from "./maps/ringbuf.ts";
import type { MapRegistry } from "./object_loader.ts";

/** Helper ids (include/uapi/linux/bpf.h `___BPF_FUNC_MAPPER`). */
export const MAP_HELPER = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  trace_printk: 6,
  map_push_elem: 87,
  map_pop_elem: 88,
  map_peek_elem: 89,
  ringbuf_output: 130,
  ringbuf_reserve: 131,
  ringbuf_submit: 132,
  ringbuf_discard: 133,
  ringbuf_query: 134,
  map_lookup_percpu_elem: 195,
} as const;

/** What the map helpers leave behind for inspection. */
export interface MapHelperLog {
  /** Every `bpf_trace_printk` line, formatted (what trace_pipe would show). */
  readonly printk: string[];
  /**
   * Samples `bpf_perf_event_output` wrote: when present, every perf event
   * array slot holds its CPU's event (generic_helpers_perf.ts).
   */
  perfOutput?: PerfSample[];
  /** Signals `bpf_send_signal*` sent (generic_helpers_task.ts), made on first use. */
  signals?: SentSignal[];
}

/** The CPU a helper runs on: the state's owner when the kernel runs it, else 0. */
function cpuOf(vm: CallContext): number {
  const owner = vm.owner as StateOwner | undefined;
  return owner?.cpu?.id ?? 0;
}

/** The map `arg` points at, or an ExecError (the verifier guarantees a map). */
function mapArg(registry: MapRegistry, vm: CallContext, arg: number): BpfMap {
  const map = registry.at(vm.arg(arg));
  if (map === undefined) {
    throw new ExecError(-1, `R${arg}: ${registry.describe(vm.arg(arg))}`);
  }
  return map;
}

/**
 * The map helpers, by id, over the maps of `registry`; `log` collects
 * what `bpf_trace_printk` prints.
 */
export function mapHelpers(
  registry: MapRegistry,
  log: MapHelperLog = { printk: [] },
): Map<number, HelperFn> {
  // Reserved ring buffer samples → their ring (submit / discard name only the sample).
  const samples = new Map<bigint, RingBuf>();
  const key = (vm: CallContext, map: BpfMap, arg: number): Uint8Array =>
    vm.mem.readBytes(vm.arg(arg), map.attr.keySize);
  const value = (vm: CallContext, map: BpfMap, arg: number): Uint8Array =>
    vm.mem.readBytes(vm.arg(arg), map.attr.valueSize);
  const queue = (vm: CallContext): QueueStackMap => {
    const map = mapArg(registry, vm, 1);
    if (!(map instanceof QueueStackMap)) {
      throw new ExecError(-1, `map ${map.attr.name} is not a queue or stack`);
    }
    return map;
  };
  const ring = (vm: CallContext): RingBuf => {
    const map = mapArg(registry, vm, 1);
    if (!(map instanceof RingBuf)) {
      throw new ExecError(-1, `map ${map.attr.name} is not a ring buffer`);
    }
    return map;
  };
  const commit = (vm: CallContext, discard: boolean): number => {
    const sample = vm.arg(1);
    const rb = samples.get(sample);
    if (rb === undefined) {
      throw new ExecError(-1, `0x${sample.toString(16)} is no reserved sample`);
    }
    samples.delete(sample);
    if (discard) rb.discard(sample, vm.argLo(2));
    else rb.submit(sample, vm.argLo(2));
    return 0;
  };
  const popOrPeek = (vm: CallContext, pop: boolean): number => {
    const map = queue(vm);
    const got = pop ? map.pop() : map.peek();
    if (typeof got === "number") return got;
    vm.mem.writeBytes(vm.arg(2), got);
    return 0;
  };
  const H = MAP_HELPER;
  return new Map<number, HelperFn>([
    [H.map_lookup_elem, (vm) => {
      const map = mapArg(registry, vm, 1);
      return map.lookup(key(vm, map, 2), cpuOf(vm)) ?? 0;
    }],
    [H.map_update_elem, (vm) => {
      const map = mapArg(registry, vm, 1);
      const k = key(vm, map, 2);
      return map.update(k, value(vm, map, 3), vm.argLo(4), cpuOf(vm));
    }],
    [H.map_delete_elem, (vm) => {
      const map = mapArg(registry, vm, 1);
      return map.delete(key(vm, map, 2), cpuOf(vm));
    }],
    [H.map_lookup_percpu_elem, (vm) => {
      // mirrors bpf_map_lookup_percpu_elem(): NULL for a CPU that does not exist
      const map = mapArg(registry, vm, 1);
      const cpu = vm.arg(3);
      const nrCpus = BigInt(
        map.syscallValueSize / roundUp8(map.attr.valueSize),
      );
      if (cpu >= nrCpus) return 0;
      return map.lookup(key(vm, map, 2), Number(cpu)) ?? 0;
    }],
    [H.map_push_elem, (vm) => {
      const map = queue(vm);
      return map.push(value(vm, map, 2), vm.argLo(3));
    }],
    [H.map_pop_elem, (vm) => popOrPeek(vm, true)],
    [H.map_peek_elem, (vm) => popOrPeek(vm, false)],
    [H.ringbuf_output, (vm) => {
      const rb = ring(vm);
      const size = vm.arg(3);
      return rb.output(vm.mem.readBytes(vm.arg(2), Number(size)), vm.argLo(4));
    }],
    [H.ringbuf_reserve, (vm) => {
      const rb = ring(vm);
      if (vm.arg(3) !== 0n) return 0; // bpf_ringbuf_reserve(): flags must be 0
      const size = vm.arg(2);
      if (size > 0x3fffffffn) return 0;
      const sample = rb.reserve(Number(size));
      if (sample === null) return 0;
      samples.set(sample, rb);
      return sample;
    }],
    [H.ringbuf_submit, (vm) => commit(vm, false)],
    [H.ringbuf_discard, (vm) => commit(vm, true)],
    [H.ringbuf_query, (vm) => ring(vm).query(vm.argLo(2))],
    [H.trace_printk, (vm) => tracePrintk(vm, log)],
  ]);
}

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * `bpf_trace_printk(fmt, fmt_size, a, b, c)`: formats like the kernel's
 * `bstr_printf()` for the common conversions (`%d %i %u %x %ld %lu %lx
 * %llu %lld %llx %s %c %%`), records the line and returns its length, as
 * the kernel does. A bad format is -EINVAL.
 */
function tracePrintk(vm: CallContext, log: MapHelperLog): number {
  const size = vm.argLo(2);
  if (size <= 0) return -EINVAL;
  const fmt = vm.mem.readCString(vm.arg(1), size);
  const args = [vm.arg(3), vm.arg(4), vm.arg(5)];
  let next = 0;
  let out = "";
  for (let i = 0; i < fmt.length; i++) {
    const ch = fmt[i];
    if (ch !== "%") {
      out += ch;
      continue;
    }
    let j = i + 1;
    let longs = 0;
    while (fmt[j] === "l") {
      longs++;
      j++;
    }
    const conv = fmt[j];
    if (conv === "%") {
      out += "%";
      i = j;
      continue;
    }
    if (next >= args.length || conv === undefined) return -EINVAL;
    const raw = args[next++];
    const bits = longs === 0 ? 32 : 64;
    switch (conv) {
      case "d":
      case "i":
        out += BigInt.asIntN(bits, raw).toString();
        break;
      case "u":
        out += BigInt.asUintN(bits, raw).toString();
        break;
      case "x":
        out += BigInt.asUintN(bits, raw).toString(16);
        break;
      case "c":
        out += String.fromCharCode(Number(raw & 0xffn));
        break;
      case "s":
        out += vm.mem.readCString(raw, 512);
        break;
      default:
        return -EINVAL;
    }
    i = j;
  }
  log.printk.push(out);
  return out.length;
}
