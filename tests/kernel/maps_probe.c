// Asks the running kernel how BPF_MAP_CREATE, the map syscalls, LRU eviction
// (common and per-CPU lists, with BPF-program lookups setting reference bits)
// and ring buffer records behave, for tests/kernel/maps_*_test.ts.
// Needs root and a 2-CPU machine like the one the JSON was recorded on
// (kernel and nrCpus are recorded in it). Rebuild the fixture with:
//   gcc -O1 -Wall -o /tmp/maps_probe tests/kernel/maps_probe.c &&
//   /tmp/maps_probe > tests/kernel/maps.kernel.json && deno fmt tests/kernel/maps.kernel.json
// The process pins itself to CPU 0 (and moves between CPUs where a section
// says so) so that the LRU's per-CPU lists are deterministic.
#define _GNU_SOURCE
#include <stdlib.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sched.h>
#include <stdint.h>
static int sys(int cmd, union bpf_attr *a){ int r = syscall(__NR_bpf, cmd, a, sizeof(*a)); return r < 0 ? -errno : r; }
static const char *sep = "";
static int create_named(const char *name, const char *map_name, int type, unsigned ks, unsigned vs, unsigned me, unsigned flags){
  union bpf_attr a; memset(&a,0,sizeof a); a.map_type=type; a.key_size=ks; a.value_size=vs; a.max_entries=me; a.map_flags=flags;
  memcpy(a.map_name, map_name, strnlen(map_name, sizeof a.map_name));
  int r = sys(BPF_MAP_CREATE,&a);
  printf("%s{\"case\":\"%s\",\"mapName\":\"%s\",\"type\":%d,\"keySize\":%u,\"valueSize\":%u,\"maxEntries\":%u,\"flags\":%u,\"result\":%d}\n", sep, name, map_name, type,ks,vs,me,flags, r<0?r:0);
  sep = ",";
  return r;
}
static int create(const char *name, int type, unsigned ks, unsigned vs, unsigned me, unsigned flags){
  return create_named(name, "probe", type, ks, vs, me, flags);
}
static int upd(int fd, void *k, void *v, uint64_t fl){ union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=fd; a.key=(uint64_t)k; a.value=(uint64_t)v; a.flags=fl; return sys(BPF_MAP_UPDATE_ELEM,&a);}
static int del(int fd, void *k){ union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=fd; a.key=(uint64_t)k; return sys(BPF_MAP_DELETE_ELEM,&a);}
static int nxt(int fd, void *k, void *n){ union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=fd; a.key=(uint64_t)k; a.next_key=(uint64_t)n; return sys(BPF_MAP_GET_NEXT_KEY,&a);}
static int frz(int fd){ union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=fd; return sys(BPF_MAP_FREEZE,&a);}
#define OP(name, expr) do { printf("%s{\"op\":\"%s\",\"result\":%d}\n", sep, name, (expr)); sep = ","; } while (0)
/* Queue and stack maps: pushes (BPF_MAP_UPDATE_ELEM), peeks (LOOKUP_ELEM)
 * and pops (LOOKUP_AND_DELETE_ELEM) from user space; a peek/pop result is
 * the value read (u32) or a negative errno. */
static int qpush(int qfd, uint32_t v, uint64_t f){ union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=qfd; a.value=(uint64_t)&v; a.flags=f; return sys(BPF_MAP_UPDATE_ELEM,&a); }
static int qget(int qfd, int cmd){ uint32_t v = 0; union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=qfd; a.value=(uint64_t)&v; int r = sys(cmd,&a); return r ? r : (int)v; }
static void probe_queue_stack(void){
  create("queue ok",BPF_MAP_TYPE_QUEUE,0,4,3,0);
  create("queue key_size 4",BPF_MAP_TYPE_QUEUE,4,4,3,0);
  create("queue value_size 0",BPF_MAP_TYPE_QUEUE,0,0,3,0);
  create("queue max_entries 0",BPF_MAP_TYPE_QUEUE,0,4,0,0);
  create("queue NO_PREALLOC",BPF_MAP_TYPE_QUEUE,0,4,3,BPF_F_NO_PREALLOC);
  create("queue value 4MiB",BPF_MAP_TYPE_QUEUE,0,4<<20,1,0);
  create("queue value 4MiB+1",BPF_MAP_TYPE_QUEUE,0,(4<<20)+1,1,0);
  for (int st = 0; st < 2; st++) {
    const char *n = st ? "stack" : "queue";
    int q = create(st ? "ops stack" : "ops queue", st ? BPF_MAP_TYPE_STACK : BPF_MAP_TYPE_QUEUE, 0, 4, 3, 0);
    char op[64];
#define QOP(fmt, expr) do { snprintf(op, sizeof op, fmt, n); OP(op, (expr)); } while (0)
    QOP("%s peek empty", qget(q, BPF_MAP_LOOKUP_ELEM));
    QOP("%s push 1", qpush(q, 1, BPF_ANY));
    QOP("%s push 2", qpush(q, 2, BPF_ANY));
    QOP("%s push 3", qpush(q, 3, BPF_ANY));
    QOP("%s push 4 full", qpush(q, 4, BPF_ANY));
    QOP("%s push 4 EXIST", qpush(q, 4, BPF_EXIST));
    QOP("%s push 5 NOEXIST", qpush(q, 5, BPF_NOEXIST));
    QOP("%s peek", qget(q, BPF_MAP_LOOKUP_ELEM));
    QOP("%s pop a", qget(q, BPF_MAP_LOOKUP_AND_DELETE_ELEM));
    QOP("%s push 6", qpush(q, 6, BPF_ANY));
    QOP("%s pop b", qget(q, BPF_MAP_LOOKUP_AND_DELETE_ELEM));
    QOP("%s pop c", qget(q, BPF_MAP_LOOKUP_AND_DELETE_ELEM));
    QOP("%s pop d", qget(q, BPF_MAP_LOOKUP_AND_DELETE_ELEM));
    QOP("%s pop empty", qget(q, BPF_MAP_LOOKUP_AND_DELETE_ELEM));
    { union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=q; QOP("%s delete", sys(BPF_MAP_DELETE_ELEM,&a)); }
    { uint32_t nk; union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=q; a.next_key=(uint64_t)&nk; QOP("%s get_next_key", sys(BPF_MAP_GET_NEXT_KEY,&a)); }
    close(q);
  }
}

static void probe_create_and_ops(void){
  create("array ok",2,4,8,4,0);
  create_named("name with a space","bad name",2,4,8,4,0);
  create_named("name of 15 chars","abcdefghijklmno",2,4,8,4,0);
  create_named("name of 16 chars","abcdefghijklmnop",2,4,8,4,0);
  create_named("name with dot and underscore","global_d.rodata",2,4,8,4,0);
  create_named("name with a dash","a-b",2,4,8,4,0);
  create_named("bad name and bad key size","bad name",2,8,8,4,0);
  create("array key_size 8",2,8,8,4,0);
  create("array value_size 0",2,4,0,4,0);
  create("array max_entries 0",2,4,8,0,0);
  create("array NO_PREALLOC",2,4,8,4,1);
  create("array value_size 4MiB+1",2,4,(4<<20)+1,1,0);
  create("array value_size 4MiB",2,4,(4<<20),1,0);
  create("array MMAPABLE",2,4,8,4,1024);
  create("percpu_array MMAPABLE",6,4,8,4,1024);
  create("percpu_array value 32768",6,4,32768,1,0);
  create("percpu_array value 32769",6,4,32769,1,0);
  create("array RDONLY|WRONLY",2,4,8,4,8|16);
  create("hash ok",1,8,8,4,0);
  create("hash key_size 0",1,0,8,4,0);
  create("hash value_size 0",1,4,0,4,0);
  create("hash max_entries 0",1,4,8,0,0);
  create("hash key_size 512",1,512,8,4,0);
  create("hash key_size 513",1,513,8,4,0);
  create("hash NO_COMMON_LRU",1,4,8,4,2);
  create("hash MMAPABLE",1,4,8,4,1024);
  create("lru_hash NO_PREALLOC",9,4,8,4,1);
  create("lru_hash NO_COMMON_LRU",9,4,8,4,2);
  create("percpu_hash value 32769",5,4,32769,1,0);
  create("hash value 4MiB",1,4,4<<20,1,0);
  create("hash value 4MiB-600",1,4,(4<<20)-600,1,0);
  create("ringbuf ok 4096",27,0,0,4096,0);
  create("ringbuf 10000",27,0,0,10000,0);
  create("ringbuf 8192",27,0,0,8192,0);
  create("ringbuf 2048",27,0,0,2048,0);
  create("ringbuf key_size 4",27,4,0,4096,0);
  create("ringbuf value_size 4",27,0,4,4096,0);
  create("ringbuf max_entries 0",27,0,0,0,0);
  create("ringbuf NO_PREALLOC",27,0,0,4096,1);
  create("ringbuf 1<<31",27,0,0,1u<<31,0);
  /* ops on a 4-entry array */
  int fa = create("ops array",2,4,8,4,0);
  uint32_t k=1, k9=9, nk=0; uint64_t v=0x1122;
  OP("array update NOEXIST existing", upd(fa,&k,&v,BPF_NOEXIST));
  OP("array update EXIST", upd(fa,&k,&v,BPF_EXIST));
  OP("array update index 9", upd(fa,&k9,&v,BPF_ANY));
  OP("array update flags 3", upd(fa,&k,&v,3));
  OP("array update F_LOCK no lock", upd(fa,&k,&v,BPF_F_LOCK));
  OP("array delete", del(fa,&k));
  OP("array next_key of 9", (nxt(fa,&k9,&nk), (int)nk));
  uint32_t k3=3; OP("array next_key of last", nxt(fa,&k3,&nk));
  OP("array next_key NULL", (nxt(fa,NULL,&nk), (int)nk));
  OP("array freeze", frz(fa));
  OP("array update after freeze", upd(fa,&k,&v,BPF_ANY));
  OP("array freeze twice", frz(fa));
  OP("array delete after freeze", del(fa,&k));
  int fh = create("ops hash",1,4,8,2,0);
  uint32_t h1=1,h2=2,h3=3;
  OP("hash update EXIST missing", upd(fh,&h1,&v,BPF_EXIST));
  OP("hash update 1", upd(fh,&h1,&v,BPF_ANY));
  OP("hash update NOEXIST existing", upd(fh,&h1,&v,BPF_NOEXIST));
  OP("hash update 2", upd(fh,&h2,&v,BPF_ANY));
  OP("hash update 3 full", upd(fh,&h3,&v,BPF_ANY));
  OP("hash update 1 replace when full", upd(fh,&h1,&v,BPF_ANY));
  OP("hash update flags 4", upd(fh,&h1,&v,4));
  OP("hash delete 3 missing", del(fh,&h3));
  OP("hash delete 1", del(fh,&h1));
  OP("hash next_key NULL", (nxt(fh,NULL,&nk), (int)nk));
  OP("hash next_key of missing 7", (h3=7, nxt(fh,&h3,&nk), (int)nk));
  OP("hash next_key of last", nxt(fh,&h2,&nk));
  probe_queue_stack();
}
static int fd;
static int lupd(uint32_t k, uint64_t fl){ uint64_t v = k * 100; union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=fd; a.key=(uint64_t)&k; a.value=(uint64_t)&v; a.flags=fl; return sys(BPF_MAP_UPDATE_ELEM,&a);}
static int ldel(uint32_t k){ union bpf_attr a; memset(&a,0,sizeof a); a.map_fd=fd; a.key=(uint64_t)&k; return sys(BPF_MAP_DELETE_ELEM,&a);}
static void keys(const char *op, int r){
  /* print sorted key set */
  uint32_t ks[64]; int n=0; uint32_t cur, nk; union bpf_attr a; int first=1;
  while (1){ memset(&a,0,sizeof a); a.map_fd=fd; a.key= first?0:(uint64_t)&cur; a.next_key=(uint64_t)&nk; if (sys(BPF_MAP_GET_NEXT_KEY,&a)) break; ks[n++]=nk; cur=nk; first=0; }
  for (int i=0;i<n;i++) for (int j=i+1;j<n;j++) if (ks[j]<ks[i]){uint32_t t=ks[i];ks[i]=ks[j];ks[j]=t;}
  printf("%s{\"op\":\"%s\",\"result\":%d,\"keys\":[", sep, op, r); sep = ","; for (int i=0;i<n;i++) printf("%s%u", i?",":"", ks[i]); printf("]}\n");
}
static void probe_lru(unsigned me){
  union bpf_attr a; memset(&a,0,sizeof a); a.map_type=BPF_MAP_TYPE_LRU_HASH; a.key_size=4; a.value_size=8; a.max_entries=me; fd = sys(BPF_MAP_CREATE,&a);
  char op[64];
  for (uint32_t k=1;k<=12;k++){ snprintf(op,sizeof op,"update %u ANY",k); keys(op, lupd(k,BPF_ANY)); }
  keys("update 12 NOEXIST", lupd(12,BPF_NOEXIST));
  keys("update 99 EXIST", lupd(99,BPF_EXIST));
  keys("update 11 ANY", lupd(11,BPF_ANY));
  keys("delete 12", ldel(12));
  keys("delete 12 again", ldel(12));
  for (uint32_t k=20;k<=24;k++){ snprintf(op,sizeof op,"update %u ANY",k); keys(op, lupd(k,BPF_ANY)); }
}

/* LRU with reference bits: lookups come from a BPF program (syscall type,
 * run with BPF_PROG_TEST_RUN on this CPU), which sets the node's ref bit. */
static int rprog;
static int rlook(uint32_t k){ union bpf_attr a; memset(&a,0,sizeof a); a.test.prog_fd=rprog; a.test.ctx_in=(uint64_t)&k; a.test.ctx_size_in=4; int r = sys(BPF_PROG_TEST_RUN,&a); return r ? r : (int)a.test.retval; }
static void probe_lru_ref(void){
  union bpf_attr a; memset(&a,0,sizeof a); a.map_type=BPF_MAP_TYPE_LRU_HASH; a.key_size=4; a.value_size=8; a.max_entries=8; fd = sys(BPF_MAP_CREATE,&a);
  struct bpf_insn insns[] = {
    { .code = BPF_LDX|BPF_MEM|BPF_W, .dst_reg = 3, .src_reg = 1, .off = 0 },   /* r3 = *(u32 *)ctx */
    { .code = BPF_STX|BPF_MEM|BPF_W, .dst_reg = 10, .src_reg = 3, .off = -4 }, /* key on the stack */
    { .code = BPF_ALU64|BPF_MOV|BPF_X, .dst_reg = 2, .src_reg = 10 },
    { .code = BPF_ALU64|BPF_ADD|BPF_K, .dst_reg = 2, .imm = -4 },
    { .code = BPF_LD|BPF_DW|BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = fd },
    { 0 },
    { .code = BPF_JMP|BPF_CALL, .imm = BPF_FUNC_map_lookup_elem },
    { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 1, .imm = 0 },
    { .code = BPF_JMP|BPF_JEQ|BPF_K, .dst_reg = 0, .imm = 0, .off = 1 },
    { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 1, .imm = 1 },
    { .code = BPF_ALU64|BPF_MOV|BPF_X, .dst_reg = 0, .src_reg = 1 },          /* found ? 1 : 0 */
    { .code = BPF_JMP|BPF_EXIT },
  };
  memset(&a,0,sizeof a); a.prog_type=BPF_PROG_TYPE_SYSCALL; a.insns=(uint64_t)insns; a.insn_cnt=sizeof insns/sizeof insns[0]; a.license=(uint64_t)"GPL"; a.prog_flags=BPF_F_SLEEPABLE;
  rprog = sys(BPF_PROG_LOAD,&a);
  static const char *script[] = { "u1","u2","u3","u4","u5","u6","u7","u8","l1","l2","u9","u10","u11","u12",
    "l7","l9","u13","u14","u15","u16","u17","u18","u19","u20","l13","l1","u21","u22","u23","u24","l20","l21","l22","u25","u26","u27","u28" };
  char op[64];
  for (unsigned i = 0; i < sizeof script / sizeof script[0]; i++) {
    uint32_t k = atoi(script[i] + 1);
    if (script[i][0] == 'u') { snprintf(op,sizeof op,"update %u ANY",k); keys(op, lupd(k,BPF_ANY)); }
    else { snprintf(op,sizeof op,"lookup %u",k); keys(op, rlook(k)); }
  }
}

/* Per-CPU LRU (BPF_F_NO_COMMON_LRU): each CPU evicts only its own nodes.
 * "c0"/"c1" move this process to another CPU; lookups come from the BPF
 * program as above. */
static void pin(int cpu){ cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu,&s); sched_setaffinity(0,sizeof s,&s); }
static void probe_percpu_lru(void){
  union bpf_attr a; memset(&a,0,sizeof a); a.map_type=BPF_MAP_TYPE_LRU_HASH; a.key_size=4; a.value_size=8; a.max_entries=7; a.map_flags=BPF_F_NO_COMMON_LRU;
  int f7 = sys(BPF_MAP_CREATE,&a);
  struct bpf_map_info info; memset(&info,0,sizeof info); memset(&a,0,sizeof a); a.info.bpf_fd=f7; a.info.info_len=sizeof info; a.info.info=(uint64_t)&info;
  int r = sys(BPF_OBJ_GET_INFO_BY_FD,&a);
  printf("%s{\"op\":\"max_entries 7 on %ld CPUs\",\"result\":%d,\"maxEntries\":%u}\n", sep, sysconf(_SC_NPROCESSORS_CONF), r, info.max_entries); sep = ",";
  close(f7);
  memset(&a,0,sizeof a); a.map_type=BPF_MAP_TYPE_LRU_HASH; a.key_size=4; a.value_size=8; a.max_entries=8; a.map_flags=BPF_F_NO_COMMON_LRU; fd = sys(BPF_MAP_CREATE,&a);
  int oldprog = rprog; rprog = -1;
  struct bpf_insn insns[] = {
    { .code = BPF_LDX|BPF_MEM|BPF_W, .dst_reg = 3, .src_reg = 1, .off = 0 },
    { .code = BPF_STX|BPF_MEM|BPF_W, .dst_reg = 10, .src_reg = 3, .off = -4 },
    { .code = BPF_ALU64|BPF_MOV|BPF_X, .dst_reg = 2, .src_reg = 10 },
    { .code = BPF_ALU64|BPF_ADD|BPF_K, .dst_reg = 2, .imm = -4 },
    { .code = BPF_LD|BPF_DW|BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = fd },
    { 0 },
    { .code = BPF_JMP|BPF_CALL, .imm = BPF_FUNC_map_lookup_elem },
    { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 1, .imm = 0 },
    { .code = BPF_JMP|BPF_JEQ|BPF_K, .dst_reg = 0, .imm = 0, .off = 1 },
    { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 1, .imm = 1 },
    { .code = BPF_ALU64|BPF_MOV|BPF_X, .dst_reg = 0, .src_reg = 1 },
    { .code = BPF_JMP|BPF_EXIT },
  };
  memset(&a,0,sizeof a); a.prog_type=BPF_PROG_TYPE_SYSCALL; a.insns=(uint64_t)insns; a.insn_cnt=sizeof insns/sizeof insns[0]; a.license=(uint64_t)"GPL"; a.prog_flags=BPF_F_SLEEPABLE;
  rprog = sys(BPF_PROG_LOAD,&a);
  static const char *script[] = { "c0","u1","u2","u3","u4","u5","u6","c1","u11","u12","u13","u14","u15",
    "c0","l3","l5","u7","u8","u9","c1","l12","u16","u17","u5","c0","d5","u10","u20","u21","u22" };
  char op[64];
  for (unsigned i = 0; i < sizeof script / sizeof script[0]; i++) {
    uint32_t k = atoi(script[i] + 1);
    switch (script[i][0]) {
    case 'c': pin(k); snprintf(op,sizeof op,"cpu %u",k); keys(op, 0); break;
    case 'u': snprintf(op,sizeof op,"update %u ANY",k); keys(op, lupd(k,BPF_ANY)); break;
    case 'd': snprintf(op,sizeof op,"delete %u",k); keys(op, ldel(k)); break;
    default: snprintf(op,sizeof op,"lookup %u",k); keys(op, rlook(k)); break;
    }
  }
  pin(0);
  close(rprog); rprog = oldprog;
}

/* Random workloads: a deterministic LCG (the tests reimplement it) drives
 * updates (ANY/NOEXIST/EXIST), BPF lookups, deletes and CPU switches on a
 * 16-entry map over 48 keys; the key set is recorded after every step. */
static uint32_t lcg;
static uint32_t rnd(uint32_t n){ lcg = lcg * 1103515245u + 12345u; return ((lcg >> 16) & 0x7fff) % n; }
static int load_lookup_prog(int mapfd){
  struct bpf_insn insns[] = {
    { .code = BPF_LDX|BPF_MEM|BPF_W, .dst_reg = 3, .src_reg = 1, .off = 0 },
    { .code = BPF_STX|BPF_MEM|BPF_W, .dst_reg = 10, .src_reg = 3, .off = -4 },
    { .code = BPF_ALU64|BPF_MOV|BPF_X, .dst_reg = 2, .src_reg = 10 },
    { .code = BPF_ALU64|BPF_ADD|BPF_K, .dst_reg = 2, .imm = -4 },
    { .code = BPF_LD|BPF_DW|BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = mapfd },
    { 0 },
    { .code = BPF_JMP|BPF_CALL, .imm = BPF_FUNC_map_lookup_elem },
    { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 1, .imm = 0 },
    { .code = BPF_JMP|BPF_JEQ|BPF_K, .dst_reg = 0, .imm = 0, .off = 1 },
    { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 1, .imm = 1 },
    { .code = BPF_ALU64|BPF_MOV|BPF_X, .dst_reg = 0, .src_reg = 1 },
    { .code = BPF_JMP|BPF_EXIT },
  };
  union bpf_attr a; memset(&a,0,sizeof a); a.prog_type=BPF_PROG_TYPE_SYSCALL; a.insns=(uint64_t)insns; a.insn_cnt=sizeof insns/sizeof insns[0]; a.license=(uint64_t)"GPL"; a.prog_flags=BPF_F_SLEEPABLE;
  return sys(BPF_PROG_LOAD,&a);
}
static void keys_line(const char *op, int r){
  /* one compact string per step: "OP|RESULT|K1,K2,..." (sorted keys) */
  uint32_t ks[64]; int n=0; uint32_t cur, nk; union bpf_attr a; int first=1;
  while (1){ memset(&a,0,sizeof a); a.map_fd=fd; a.key= first?0:(uint64_t)&cur; a.next_key=(uint64_t)&nk; if (sys(BPF_MAP_GET_NEXT_KEY,&a)) break; ks[n++]=nk; cur=nk; first=0; }
  for (int i=0;i<n;i++) for (int j=i+1;j<n;j++) if (ks[j]<ks[i]){uint32_t t=ks[i];ks[i]=ks[j];ks[j]=t;}
  printf("%s\"%s|%d|", sep, op, r); sep = ","; for (int i=0;i<n;i++) printf("%s%u", i?",":"", ks[i]); printf("\"\n");
}
static void probe_random(int type, unsigned flags, unsigned steps){
  union bpf_attr a; memset(&a,0,sizeof a); a.map_type=type; a.key_size=4; a.value_size=8; a.max_entries=16; a.map_flags=flags; fd = sys(BPF_MAP_CREATE,&a);
  int oldprog = rprog; rprog = load_lookup_prog(fd);
  lcg = 1; pin(0);
  long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  char op[64]; uint64_t v[64] = { 0 };
  for (unsigned i = 0; i < steps; i++) {
    if (i % 40 == 39) { int c = rnd(ncpu); pin(c); snprintf(op,sizeof op,"cpu %d",c); keys_line(op, 0); continue; }
    uint32_t r = rnd(100), k = 1 + rnd(48);
    int res;
    if (r < 60) {
      uint64_t f = r < 40 ? BPF_ANY : r < 50 ? BPF_NOEXIST : BPF_EXIST;
      union bpf_attr u; memset(&u,0,sizeof u); u.map_fd=fd; u.key=(uint64_t)&k; u.value=(uint64_t)v; u.flags=f;
      res = sys(BPF_MAP_UPDATE_ELEM,&u);
      snprintf(op,sizeof op,"update %u %lu",k,(unsigned long)f);
    } else if (r < 85) { res = rlook(k); snprintf(op,sizeof op,"lookup %u",k); }
    else { res = ldel(k); snprintf(op,sizeof op,"delete %u",k); }
    keys_line(op, res);
  }
  pin(0); close(rprog); rprog = oldprog; close(fd);
}

/* Ring buffer: records written by BPF programs (reserve, fill, submit or
 * discard), read back through the user-space mmap of the ring. */
static int rbfd;
static volatile uint64_t *cons; static const volatile uint64_t *prod; static const uint8_t *rbdata;
/* reserve(size), fill bytes base+i (when size <= 256), then submit or discard; r0 = 1 if reserved */
static int rb_run(unsigned size, int discard, int base){
  static struct bpf_insn insns[600]; int n = 0;
  insns[n++] = (struct bpf_insn){ .code = BPF_LD|BPF_DW|BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = rbfd };
  insns[n++] = (struct bpf_insn){ 0 };
  insns[n++] = (struct bpf_insn){ .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 2, .imm = size };
  insns[n++] = (struct bpf_insn){ .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 3, .imm = 0 };
  insns[n++] = (struct bpf_insn){ .code = BPF_JMP|BPF_CALL, .imm = BPF_FUNC_ringbuf_reserve };
  int fill = size <= 256 ? size : 0;
  insns[n++] = (struct bpf_insn){ .code = BPF_JMP|BPF_JNE|BPF_K, .dst_reg = 0, .imm = 0, .off = 2 };
  insns[n++] = (struct bpf_insn){ .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 0, .imm = 0 };
  insns[n++] = (struct bpf_insn){ .code = BPF_JMP|BPF_EXIT };
  for (int i = 0; i < fill; i++)
    insns[n++] = (struct bpf_insn){ .code = BPF_ST|BPF_MEM|BPF_B, .dst_reg = 0, .off = i, .imm = (base + i) & 0xff };
  insns[n++] = (struct bpf_insn){ .code = BPF_ALU64|BPF_MOV|BPF_X, .dst_reg = 1, .src_reg = 0 };
  insns[n++] = (struct bpf_insn){ .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 2, .imm = 0 };
  insns[n++] = (struct bpf_insn){ .code = BPF_JMP|BPF_CALL, .imm = discard ? BPF_FUNC_ringbuf_discard : BPF_FUNC_ringbuf_submit };
  insns[n++] = (struct bpf_insn){ .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 0, .imm = 1 };
  insns[n++] = (struct bpf_insn){ .code = BPF_JMP|BPF_EXIT };
  static char log[1 << 16];
  union bpf_attr a; memset(&a,0,sizeof a); a.prog_type=BPF_PROG_TYPE_SYSCALL; a.insns=(uint64_t)insns; a.insn_cnt=n; a.license=(uint64_t)"GPL"; a.prog_flags=BPF_F_SLEEPABLE; a.log_buf=(uint64_t)log; a.log_size=sizeof log; a.log_level=1;
  int prog = sys(BPF_PROG_LOAD,&a); if (prog < 0) { fprintf(stderr, "load: %d\n%s\n", prog, log); return prog; }
  uint64_t ctx = 0; memset(&a,0,sizeof a); a.test.prog_fd=prog; a.test.ctx_in=(uint64_t)&ctx; a.test.ctx_size_in=8;
  int r = sys(BPF_PROG_TEST_RUN,&a); close(prog);
  return r ? r : (int)a.test.retval;
}
static void rb_step(const char *op, int r, unsigned from, unsigned len){
  printf("%s{\"op\":\"%s\",\"result\":%d,\"producerPos\":%lu,\"consumerPos\":%lu,\"from\":%u,\"bytes\":\"", sep, op, r, (unsigned long)*prod, (unsigned long)*cons, from);
  for (unsigned i = 0; i < len; i++) printf("%02x", rbdata[from + i]);
  printf("\"}\n"); sep = ",";
}
static void probe_ringbuf(void){
  union bpf_attr a; memset(&a,0,sizeof a); a.map_type=BPF_MAP_TYPE_RINGBUF; a.max_entries=4096; rbfd = sys(BPF_MAP_CREATE,&a);
  cons = mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, rbfd, 0);
  const uint8_t *ro = mmap(NULL, 4096 + 2*4096, PROT_READ, MAP_SHARED, rbfd, 4096);
  prod = (const volatile uint64_t *)ro; rbdata = ro + 4096;
  rb_step("reserve 5 submit", rb_run(5, 0, 1), 0, 32);
  rb_step("reserve 3 discard", rb_run(3, 1, 0x10), 0, 32);
  rb_step("reserve 4080 submit (no room)", rb_run(4080, 0, 0), 0, 32);
  *cons = 32;
  rb_step("reserve 4080 submit", rb_run(4080, 0, 0), 0, 32);
  rb_step("reserve 1 submit (full)", rb_run(1, 0, 0), 0, 8);
  *cons = *prod;
  rb_step("reserve 4000 submit", rb_run(4000, 0, 0), 16, 16);
  *cons = *prod;
  rb_step("reserve 200 submit (wraps)", rb_run(200, 0, 0x40), 4032, 64);
  rb_step("wrapped tail", 0, 0, 144);
}

int main(void){
  cpu_set_t s; CPU_ZERO(&s); CPU_SET(0,&s); sched_setaffinity(0,sizeof s,&s);
  struct utsname u; uname(&u);
  printf("{\"kernel\":\"%s\",\"nrCpus\":%ld,\n\"ops\":[\n", u.release, sysconf(_SC_NPROCESSORS_CONF));
  probe_create_and_ops();
  printf("],\n\"lru8\":[\n"); sep = ""; probe_lru(8);
  printf("],\n\"lru4\":[\n"); sep = ""; probe_lru(4);
  printf("],\n\"lruRef\":[\n"); sep = ""; probe_lru_ref();
  printf("],\n\"percpuLru\":[\n"); sep = ""; probe_percpu_lru();
  printf("],\n\"randomHash\":[\n"); sep = ""; probe_random(BPF_MAP_TYPE_HASH, 0, 300);
  printf("],\n\"randomLru\":[\n"); sep = ""; probe_random(BPF_MAP_TYPE_LRU_HASH, 0, 600);
  printf("],\n\"randomPercpuLru\":[\n"); sep = ""; probe_random(BPF_MAP_TYPE_LRU_HASH, BPF_F_NO_COMMON_LRU, 600);
  printf("],\n\"randomLruPercpuHash\":[\n"); sep = ""; probe_random(BPF_MAP_TYPE_LRU_PERCPU_HASH, 0, 600);
  printf("],\n\"ringbuf\":[\n"); sep = ""; probe_ringbuf();
  printf("]}\n");
  return 0;
}
