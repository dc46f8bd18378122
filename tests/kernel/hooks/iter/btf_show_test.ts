/**
 * The kernel's BTF printer (lib/kernel/hooks/iter/btf_show.ts, btf_show_state.ts)
 * called directly on objects mapped in the simulated kernel, with the
 * types of tests/fixtures/runtime/btf_show/*.o.
 *
 * Expected strings are computed by hand from kernel/bpf/btf.c
 * (btf_show_name(), btf_show_type_value(), btf_int_show(), btf_ptr_show(),
 * __btf_array_show(), __btf_struct_show(), btf_enum_show(), the
 * depth_check two-pass of btf_struct_show() / btf_array_show(),
 * btf_show_obj_safe(), btf_type_snprintf_show()) or taken from the
 * selftest tools/testing/selftests/bpf/progs/netif_receive_skb.c. The
 * programs calling the helpers are tested in btf_print_helpers_test.ts.
 */
import assert from "node:assert/strict";
import type { Btf } from "../../../../lib/btf/btf.ts";
import {
  BTF_F_COMPACT as C,
  BTF_F_NONAME as N,
  BTF_F_PTR_RAW as R,
  BTF_F_ZERO as Z,
  btfTypeSnprintfShow,
} from "../../../../lib/kernel/hooks/iter/btf_show.ts";
import { kernelCopy } from "../../../../lib/kernel/hooks/iter/btf_print_helpers.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import {
  bytes,
  E0,
  E0_COMPACT,
  EFAULT,
  EINVAL,
  elem,
  ERANGE,
  idOf,
  load,
} from "./btf_show_fixtures.ts";

const snprintfObj = load("snprintf.o");
const iterObj = load("print_iter.o");

/** snprintf-shows `obj` (mapped in a kernel region) into `size` bytes. */
function show(
  loaded: LoadedObject,
  typeId: number,
  obj: Uint8Array,
  flags: number,
  size = 1024,
) {
  const space = loaded.kernel.space;
  const at = space.mapRegion("kernel", obj.slice(), { name: "btf_show obj" });
  try {
    const out = btfTypeSnprintfShow(
      loaded.object.btf as Btf,
      typeId,
      at,
      size,
      flags,
      kernelCopy(space),
    );
    const nul = out.written.indexOf(0);
    return {
      ...out,
      text: String.fromCharCode(
        ...out.written.subarray(0, nul < 0 ? undefined : nul),
      ),
    };
  } finally {
    space.unmapRegion(at);
  }
}

/** What show() prints, asserting the length returned equals it. */
function text(
  loaded: LoadedObject,
  typeId: number,
  obj: Uint8Array,
  flags: number,
): string {
  const out = show(loaded, typeId, obj, flags);
  assert.equal(out.ret, out.text.length, "return is the length printed");
  return out.text;
}

Deno.test("netif_receive_skb.c's expectations (BTF_F_COMPACT added, as TEST_BTF does)", () => {
  const o = snprintfObj;
  const int = idOf(o, "int", "INT"), char = idOf(o, "char", "INT");
  const u64 = idOf(o, "__u64", "TYPEDEF"),
    atomic = idOf(o, "atomic_t", "TYPEDEF");
  const cmd = idOf(o, "bpf_cmd", "ENUM"), benum = idOf(o, "btf_enum", "STRUCT");
  const list = idOf(o, "list_head", "STRUCT"),
    skb = idOf(o, "__sk_buff", "STRUCT");
  const insn = idOf(o, "bpf_insn", "STRUCT");
  const i32 = (v: number) => bytes(4, [0, 4, BigInt(v)]);
  const cases: [number, Uint8Array, number, string][] = [
    [int, i32(1234), 0, "(int)1234"],
    [int, i32(1234), N, "1234"],
    [int, i32(0), 0, "(int)0"],
    [int, i32(0), N, "0"],
    [int, i32(0), Z, "(int)0"],
    [int, i32(0), N | Z, "0"],
    [int, i32(-4567), 0, "(int)-4567"],
    [char, bytes(1, [0, 1, 100n]), 0, "(char)100"],
    [char, bytes(1), N | Z, "0"],
    [u64, bytes(8, [0, 8, 1n]), N, "1"],
    [u64, bytes(8), 0, "(__u64)0"],
    [atomic, i32(1), 0, "(atomic_t){.counter = (int)1,}"],
    [atomic, i32(1), N, "{1,}"],
    [atomic, i32(0), 0, "(atomic_t){}"],
    [atomic, i32(0), N, "{}"],
    [atomic, i32(0), Z, "(atomic_t){.counter = (int)0,}"],
    [atomic, i32(0), N | Z, "{0,}"],
    [cmd, i32(0), 0, "(enum bpf_cmd)BPF_MAP_CREATE"],
    [cmd, i32(0), N, "BPF_MAP_CREATE"],
    [cmd, i32(2000), 0, "(enum bpf_cmd)2000"],
    [cmd, i32(2000), N, "2000"],
    [
      benum,
      bytes(8, [0, 4, 3n], [4, 4, -1n]),
      0,
      "(struct btf_enum){.name_off = (__u32)3,.val = (__s32)-1,}",
    ],
    [benum, bytes(8, [0, 4, 3n], [4, 4, -1n]), N, "{3,-1,}"],
    [benum, bytes(8, [4, 4, -1n]), N, "{-1,}"],
    [benum, bytes(8, [4, 4, -1n]), N | Z, "{0,-1,}"],
    [benum, bytes(8), 0, "(struct btf_enum){}"],
    [benum, bytes(8), N, "{}"],
    [
      benum,
      bytes(8),
      Z,
      "(struct btf_enum){.name_off = (__u32)0,.val = (__s32)0,}",
    ],
    [
      list,
      bytes(16, [0, 8, 1n]),
      R,
      "(struct list_head){.next = (struct list_head *)0x0000000000000001,}",
    ],
    [list, bytes(16), R, "(struct list_head){}"],
    [
      skb,
      bytes(192, [48, 4, 1n], [52, 4, 2n], [56, 4, 3n], [60, 4, 4n], [
        64,
        4,
        5n,
      ]),
      0,
      "(struct __sk_buff){.cb = (__u32[])[1,2,3,4,5,],}",
    ],
    [
      skb,
      bytes(192, [48, 4, 1n], [52, 4, 2n], [56, 4, 3n], [60, 4, 4n], [
        64,
        4,
        5n,
      ]),
      N,
      "{[1,2,3,4,5,],}",
    ],
    [
      skb,
      bytes(192, [56, 4, 1n]),
      0,
      "(struct __sk_buff){.cb = (__u32[])[1,],}",
    ],
    [
      insn,
      bytes(8, [0, 1, 1n], [1, 1, 0x32n], [2, 2, 4n], [4, 4, 5n]),
      0,
      "(struct bpf_insn){.code = (__u8)1,.dst_reg = (__u8)0x2,.src_reg = (__u8)0x3,.off = (__s16)4,.imm = (__s32)5,}",
    ],
    [
      insn,
      bytes(8, [0, 1, 1n], [1, 1, 0x32n], [2, 2, 4n], [4, 4, 5n]),
      N,
      "{1,0x2,0x3,4,5,}",
    ],
  ];
  for (const [id, obj, flags, want] of cases) {
    assert.equal(text(o, id, obj, flags | C), want, want);
  }
});

Deno.test("struct elem: char array, bitfields in hex, enum, anonymous struct, zero omission", () => {
  const id = idOf(iterObj, "elem", "STRUCT");
  assert.equal(text(iterObj, id, elem(E0), C), E0_COMPACT);
  // not compact: one space of indent per level, a newline after each piece
  assert.equal(
    text(iterObj, id, elem(E0), 0),
    "(struct elem){\n .id = (int)1,\n .name = (char[])[\n  'a',\n  'b',\n ],\n" +
      " .flag = (unsigned char)0x1,\n .level = (unsigned char)0x5,\n" +
      " .colour = (enum colour)GREEN,\n .inner = (struct){\n  .s = (short)-2,\n },\n" +
      " .vals = (unsigned int[])[\n  7,\n ],\n}\n",
  );
  // all zero: only the enumerator (shown whatever its value) remains; the
  // typedef chain names the type by its outermost typedef
  const elem2 = idOf(iterObj, "elem2_t", "TYPEDEF");
  assert.equal(
    text(iterObj, elem2, elem({}), C),
    "(elem2_t){.colour = (enum colour)RED,}",
  );
  // a leading NUL hides the string; non-printable bytes print as numbers
  assert.equal(
    text(iterObj, id, elem({ name: "\u0001\u0002\u0003", colour: 9 }), C | N),
    "{[1,2,3,],9,}",
  );
  assert.equal(
    text(iterObj, id, elem({ name: "\u0000x", colour: 5 }), C | N),
    "{GREEN,}",
  );
});

Deno.test("integers of every size and sign, _Bool, char and __int128", () => {
  const id = idOf(iterObj, "ints", "STRUCT");
  const obj = bytes(
    80,
    [0, 1, -1n],
    [1, 1, 255n],
    [2, 2, -300n],
    [4, 2, 65535n],
    [8, 4, -(2n ** 31n)],
    [12, 4, 2n ** 32n - 1n],
    [16, 8, -(2n ** 63n)],
    [24, 8, 2n ** 64n - 1n],
    [32, 1, 1n],
    [33, 1, 65n],
    [48, 16, -1n],
    [64, 16, 1n],
  );
  assert.equal(
    text(iterObj, id, obj, C),
    "(struct ints){.sc = (signed char)-1,.uc = (unsigned char)255," +
      ".s = (short)-300,.us = (unsigned short)65535,.i = (int)-2147483648," +
      ".u = (unsigned int)4294967295,.ll = (long long)-9223372036854775808," +
      ".ull = (unsigned long long)18446744073709551615,.b = (_Bool)1," +
      ".c = (char)65,.big = (__int128)0xffffffffffffffffffffffffffffffff," +
      ".ubig = (unsigned __int128)0x1,}",
  );
  // an __int128 whose upper half is 0 is one hex number, omitted when 0
  assert.equal(
    text(iterObj, id, bytes(80, [64, 16, 0x1234n]), C | N),
    "{0x1234,}",
  );
});

Deno.test("struct odd: MAX_ITER typedefs, () for const, array elements' names, ( *), float, union delim", () => {
  const id = idOf(iterObj, "odd", "STRUCT");
  // pp@0 deep@8 nothing@12 (size 0) ci@12 e[2]@16 (48 each) fn@112 f@120
  const obj = bytes(
    128,
    [0, 8, 0x10n],
    [8, 4, 3n],
    [12, 4, 4n],
    [16, 4, 5n],
    [104, 4, 6n],
    [112, 8, 0x20n],
    [120, 4, 0x3fc00000n],
  );
  // deep: 11 typedefs exhaust BTF_SHOW_MAX_ITER, so it has no name; the
  // first element's silent pass clears array_member (its name array ends
  // one), so the real pass names everything; float has no show op
  assert.equal(
    text(iterObj, id, obj, C | R),
    "(struct odd){.pp = (int **)0x0000000000000010,3,.ci = ()4," +
      ".e = (elem2_t[])[(elem2_t){.id = (int)5,.colour = (enum colour)RED,}," +
      "(elem2_t){.colour = (enum colour)RED,.vals = (unsigned int[])[6,],},]," +
      ".fn = ( *)0x0000000000000020,<unsupported kind:16>}",
  );
  // BTF_F_ZERO: no silent pass, so names stay off inside the elements until
  // their name array ends; the empty union closes with the compact union
  // delimiter "|" (no member reset state.type)
  const e = "0,],0x0,0x0,RED,{0,0,},[0,0,0,],},";
  assert.equal(
    text(iterObj, id, bytes(128), C | N | Z | R),
    `{0x0000000000000000,0,{}|0,[${e}${e}],0x0000000000000000,<unsupported kind:16>}`,
  );
});

Deno.test("kinds without a show op, VAR, DATASEC, a top-level NULL pointer", () => {
  const o = iterObj, btf = o.object.btf!;
  const fn = idOf(o, "dump_elems", "FUNC"), fwd = idOf(o, "bpf_map", "FWD");
  const v = idOf(o, "last_ret", "VAR");
  const bss = btf.types.find((t) => t.kind === "DATASEC")!.id;
  const intPtr =
    btf.types.find((t) =>
      t.kind === "PTR" && "type" in t && t.type === idOf(o, "int", "INT")
    )!.id;
  assert.equal(text(o, fn, bytes(8), 0), "<unsupported kind:12>");
  assert.equal(text(o, fwd, bytes(8), 0), "<unsupported kind:7>");
  assert.equal(text(o, v, bytes(4, [0, 4, 7n]), C), "(int)7");
  assert.equal(text(o, intPtr, bytes(8), C), "(int *)0x0000000000000000");
  // btf_resolve_size() has no size for a DATASEC: -EINVAL, nothing written
  const out = show(o, bss, bytes(8), C);
  assert.deepEqual([out.ret, out.written.length], [EINVAL, 0]);
});

Deno.test("truncation: vsnprintf per piece, the return is the full length", () => {
  const o = snprintfObj, id = idOf(o, "btf_enum", "STRUCT");
  const obj = bytes(8, [0, 4, 3n], [4, 4, -1n]);
  const full = "(struct btf_enum){.name_off = (__u32)3,.val = (__s32)-1,}";
  assert.equal(full.length, 57);
  // pieces: "(struct btf_enum){" 18, ".name_off = (__u32)3," 21, ".val = (__s32)-1," 17, "}" 1
  for (
    const [size, kept] of [
      [1, 0],
      [17, 16],
      [18, 17],
      [19, 18],
      [39, 38],
      [40, 39],
      [57, 56],
      [58, 57],
    ]
  ) {
    const out = show(o, id, obj, C, size);
    assert.equal(out.ret, 57, `size ${size}`);
    assert.equal(out.text, full.slice(0, kept), `size ${size}`);
    // the last byte written is the NUL right after what was kept
    assert.equal(out.written.length, kept + 1, `size ${size}`);
  }
});

Deno.test("copy_from_kernel_nofault(): NULL -ERANGE, unmapped -EFAULT, a short region stops the walk", () => {
  const o = iterObj, space = o.kernel.space, btf = o.object.btf!;
  const int = idOf(o, "int", "INT"), ints = idOf(o, "ints", "STRUCT");
  const copy = kernelCopy(space);
  const nul = btfTypeSnprintfShow(btf, int, 0n, 64, C, copy);
  assert.deepEqual([nul.ret, nul.written.length], [ERANGE, 0]);
  const gone = space.mapRegion("kernel", 8, { name: "freed" });
  space.unmapRegion(gone);
  assert.equal(btfTypeSnprintfShow(btf, int, gone, 64, C, copy).ret, EFAULT);
  // 40 of the 80 bytes: the first 32-byte copy works; ull@24 asks for
  // [24, 56) and fails, as every later copy: -EFAULT, the output so far kept
  const at = space.mapRegion("kernel", bytes(40, [0, 1, 1n], [16, 8, 2n]), {
    name: "short",
  });
  const out = btfTypeSnprintfShow(btf, ints, at, 128, C, copy);
  space.unmapRegion(at);
  assert.equal(out.ret, EFAULT);
  const printed = String.fromCharCode(
    ...out.written.subarray(0, out.written.indexOf(0)),
  );
  assert.equal(
    printed,
    "(struct ints){.sc = (signed char)1,.ll = (long long)2,}",
  );
});
