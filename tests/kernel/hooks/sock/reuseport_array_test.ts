// BPF_MAP_TYPE_REUSEPORT_SOCKARRAY from user space (lib/kernel/maps/
// reuseport_array.ts): every expectation worked out by hand from
// kernel/bpf/reuseport_array.c (reuseport_array_alloc_check() then
// array_map_alloc_check(), bpf_fd_reuseport_array_update_elem() with
// reuseport_array_update_check(), bpf_fd_reuseport_array_lookup_elem(),
// reuseport_array_delete_elem(), reuseport_array_get_next_key(),
// bpf_sk_reuseport_detach()) and net/core/sock_reuseport.c
// (reuseport_detach_sock(), reuseport_stop_listen_sock()).
import assert from "node:assert/strict";
import { AddressSpace } from "../../../../lib/exec/memory.ts";
import {
  createMap,
  mapAllocCheck,
} from "../../../../lib/kernel/maps/create.ts";
import type { MapAttr } from "../../../../lib/kernel/maps/map.ts";
import { u32Key } from "../../../../lib/kernel/maps/map.ts";
import type { ReuseportArray } from "../../../../lib/kernel/maps/reuseport_array.ts";
import {
  IPPROTO,
  ReuseportGroup,
  ReuseportSock,
} from "../../../../lib/kernel/hooks/sock/sk_reuseport_group.ts";
import { MAP_TYPE } from "../../../../lib/uapi/bpf.ts";

const EINVAL = -22, E2BIG = -7, EEXIST = -17, ENOENT = -2, EBADF = -9;
const ENOSPC = -28, EBUSY = -16, ENOTSUPP = -524, EPERM = -1;
const NOEXIST = 1, EXIST = 2;
const BPF_F_NO_PREALLOC = 1, BPF_F_RDONLY = 8, BPF_F_MMAPABLE = 1 << 10;

function attr(over: Partial<MapAttr> = {}): MapAttr {
  return {
    name: "ra",
    type: MAP_TYPE.reuseport_sockarray,
    keySize: 4,
    valueSize: 8,
    maxEntries: 4,
    flags: 0,
    ...over,
  };
}

function setup(over: Partial<MapAttr> = {}) {
  const space = new AddressSpace();
  const array = createMap(space, attr(over)) as ReuseportArray;
  const group = new ReuseportGroup({ reuseportId: 1 });
  const sock = (protocol: number = IPPROTO.TCP, family = 2) => {
    const sk = new ReuseportSock(space, { protocol, family });
    group.add(sk);
    return sk;
  };
  return { space, array, group, sock };
}

Deno.test("creation checks: 4- or 8-byte values, then array_map_alloc_check()", () => {
  const cases: [Partial<MapAttr>, number][] = [
    [{}, 0],
    [{ valueSize: 4 }, 0],
    [{ valueSize: 2 }, EINVAL],
    [{ valueSize: 16 }, EINVAL],
    [{ keySize: 8 }, EINVAL],
    [{ maxEntries: 0 }, EINVAL],
    [{ flags: BPF_F_NO_PREALLOC }, EINVAL],
    [{ flags: BPF_F_MMAPABLE }, EINVAL], // only BPF_MAP_TYPE_ARRAY
    [{ flags: BPF_F_RDONLY }, 0],
  ];
  for (const [over, want] of cases) {
    assert.equal(mapAllocCheck(attr(over)), want, JSON.stringify(over));
  }
});

Deno.test("updates: flags, bounds, the update checks, one slot per socket", () => {
  const { space, array, group, sock } = setup();
  const a = sock(), b = sock(IPPROTO.UDP), c = sock(IPPROTO.TCP, 10);
  assert.equal(array.updateSock(u32Key(0), a, 3), EINVAL); // > BPF_EXIST
  assert.equal(array.updateSock(u32Key(4), a, 0), E2BIG);
  assert.equal(array.updateSock(u32Key(0), a, EXIST), ENOENT);
  assert.equal(array.updateSock(u32Key(0), a, NOEXIST), 0);
  assert.equal(array.updateSock(u32Key(0), b, NOEXIST), EEXIST);
  assert.equal(array.updateSock(u32Key(1), a, 0), EBUSY); // sk_user_data set
  assert.equal(array.updateSock(u32Key(1), b, 0), 0);
  assert.equal(array.updateSock(u32Key(2), c, 0), 0);
  // replacing: the old socket forgets its slot and may go elsewhere
  assert.equal(array.updateSock(u32Key(0), c, EXIST), EBUSY);
  const d = sock();
  assert.equal(array.updateSock(u32Key(0), d, EXIST), 0);
  assert.equal(array.sockAtIndex(0), d);
  assert.equal(a.userData, undefined);
  assert.equal(array.updateSock(u32Key(3), a, 0), 0);
  // neither TCP nor UDP, nor INET / INET6: -ENOTSUPP
  assert.equal(array.updateSock(u32Key(3), sock(132), 0), ENOTSUPP);
  assert.equal(array.updateSock(u32Key(3), sock(IPPROTO.TCP, 1), 0), ENOTSUPP);
  // not in a group (so not hashed): -EINVAL
  const loner = new ReuseportSock(space);
  assert.equal(array.updateSock(u32Key(3), loner, 0), EINVAL);
  // a closed listener (closed section) is unhashed too
  group.stopListen(d);
  assert.equal(array.sockAtIndex(0), undefined);
  assert.equal(array.updateSock(u32Key(0), d, 0), EINVAL);
});

Deno.test("the fd path, lookups, deletes, next keys, detaching", () => {
  const { array, group, sock } = setup();
  const a = sock();
  const fd = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return b;
  };
  assert.equal(array.updateFromSyscall(u32Key(0), fd(3n), 0), EBADF);
  assert.equal(array.updateFromSyscall(u32Key(0), fd(1n << 31n), 0), EINVAL);
  assert.equal(array.updateFromSyscall(u32Key(9), fd(3n), 0), E2BIG);
  assert.equal(array.updateFromSyscall(u32Key(0), fd(3n), 4), EINVAL);
  assert.equal(array.updateSock(u32Key(1), a, 0), 0);
  const cookie = array.lookupValueCopy(u32Key(1));
  assert.ok(cookie instanceof Uint8Array);
  assert.equal(new DataView(cookie.buffer).getBigUint64(0, true), a.cookie);
  assert.notEqual(a.cookie, 0n);
  assert.equal(array.lookupValueCopy(u32Key(0)), ENOENT);
  assert.equal(array.deleteFromSyscall(u32Key(4)), E2BIG);
  assert.equal(array.deleteFromSyscall(u32Key(0)), ENOENT);
  assert.deepEqual(array.getNextKey(null), u32Key(0));
  assert.deepEqual(array.getNextKey(u32Key(1)), u32Key(2));
  assert.equal(array.getNextKey(u32Key(3)), ENOENT);
  assert.deepEqual(array.getNextKey(u32Key(9)), u32Key(0));
  group.detach(a); // close(): bpf_sk_reuseport_detach()
  assert.equal(array.sockAtIndex(1), undefined);
  assert.equal(a.userData, undefined);
  const b = sock();
  assert.equal(array.updateSock(u32Key(2), b, 0), 0);
  assert.equal(array.deleteFromSyscall(u32Key(2)), 0);
  assert.equal(b.userData, undefined);
  assert.equal(array.updateSock(u32Key(2), b, 0), 0); // free to go back
});

Deno.test("4-byte values: no cookie for user space (-ENOSPC); read-only maps -EPERM", () => {
  const four = setup({ valueSize: 4 });
  const a = four.sock();
  assert.equal(four.array.updateSock(u32Key(0), a, 0), 0);
  assert.equal(four.array.lookupValueCopy(u32Key(0)), ENOSPC);
  const ro = setup({ flags: BPF_F_RDONLY });
  assert.equal(ro.array.updateSock(u32Key(0), ro.sock(), 0), EPERM);
});

Deno.test("destroying the map releases every socket's slot", () => {
  const { array, sock } = setup();
  const a = sock();
  assert.equal(array.updateSock(u32Key(0), a, 0), 0);
  array.destroy();
  assert.equal(a.userData, undefined);
});
