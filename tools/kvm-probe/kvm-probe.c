/*
 * kvm-probe: drive a real Linux KVM/arm64 (/dev/kvm) with ioctls and print
 * what it answers about the firmware pseudo-registers (class 0x14) and the
 * hypercall feature bitmap registers (class 0x16), one JSON object per line.
 *
 * The record format is the one of the shared kernel-probe results (see
 * README.md beside this file).  This is hcsim's own implementation, written
 * from that record format.
 *
 * Runs either as /init of an initramfs (pid 1: mounts /proc, /sys, /dev,
 * prints to the console, then powers the machine off) or as a normal program
 * on an arm64 host that has /dev/kvm (prints to stdout and exits).
 *
 * Build: aarch64-linux-gnu-gcc -static -O2 -Wall -o kvm-probe kvm-probe.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <linux/kvm.h>

/* ---- register id encoding (uapi arch/arm64/include/uapi/asm/kvm.h) ---- */
#define REG_ARM64        0x6000000000000000ULL
#define REG_SIZE_U32     0x0020000000000000ULL
#define REG_SIZE_U64     0x0030000000000000ULL
#define REG_SIZE_U128    0x0040000000000000ULL
#define REG_SIZE_MASK    0x00f0000000000000ULL
#define COPROC_SHIFT     16
#define COPROC_MASK      0x000000000fff0000ULL
#define CLASS_CORE       0x0010
#define CLASS_FW         0x0014
#define CLASS_FW_BMAP    0x0016

#define FW_REG(i)        (REG_ARM64 | REG_SIZE_U64 | ((uint64_t)CLASS_FW << COPROC_SHIFT) | (i))
#define BMAP_REG(i)      (REG_ARM64 | REG_SIZE_U64 | ((uint64_t)CLASS_FW_BMAP << COPROC_SHIFT) | (i))
#define PSCI_VERSION_ID  FW_REG(0)
/* core register pc: offsetof(struct kvm_regs, regs.pc) / 4 = 32 * 8 / 4 */
#define CORE_PC_ID       (REG_ARM64 | REG_SIZE_U64 | ((uint64_t)CLASS_CORE << COPROC_SHIFT) | 0x40)

#define SENTINEL         0xdeadbeefdeadbeefULL
#define BIT63            0x8000000000000000ULL

/* capability numbers (uapi linux/kvm.h); kept here so old headers build too */
static const struct { const char *name; long nr; } caps_list[] = {
	{ "ONE_REG", 70 },
	{ "ARM_PSCI", 87 },
	{ "ARM_PSCI_0_2", 102 },
	{ "ARM_USER_IRQ", 144 },
	{ "ARM_SYSTEM_SUSPEND", 216 },
	{ "ARM_PMU_V3", 126 },
	{ "ARM_SVE", 170 },
	{ "ARM_PTRAUTH_ADDRESS", 171 },
	{ "ARM_NISV_TO_USER", 177 },
	{ "ARM_MTE", 205 },
	{ "ARM_EL1_32BIT", 93 },
};

/* ---- output ---------------------------------------------------------- */

static int out_fd = 1;
static char line[16384];
static size_t line_len;

static void p(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (line_len >= sizeof(line) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + line_len, sizeof(line) - line_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		line_len += (size_t)n < sizeof(line) - line_len ? (size_t)n : sizeof(line) - line_len - 1;
}

static void p_str(const char *key, const char *s)
{
	p(",\"%s\":\"", key);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			p("\\%c", c);
		else if (c == '\n')
			p("\\n");
		else if (c < 0x20)
			p("\\u%04x", c);
		else
			p("%c", c);
	}
	p("\"");
}

static void p_hex(const char *key, uint64_t v) { p(",\"%s\":\"0x%" PRIx64 "\"", key, v); }
static void p_int(const char *key, long long v) { p(",\"%s\":%lld", key, v); }

/* every record is written with one write(2), so console output of the kernel
 * cannot split it */
static void begin(const char *t) { line_len = 0; p("{\"t\":\"%s\"", t); }

static void end(void)
{
	size_t off = 0;

	p("}\n");
	while (off < line_len) {
		ssize_t w = write(out_fd, line + off, line_len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
}

static const char *errname(int e)
{
	static char buf[16];

	switch (e) {
	case 0: return "";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case E2BIG: return "E2BIG";
	case ENOEXEC: return "ENOEXEC";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ENOTTY: return "ENOTTY";
	case ERANGE: return "ERANGE";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EPROTO: return "EPROTO";
	default:
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
}

static void p_ret(int ret, int err)
{
	p_int("ret", ret);
	p_str("errno", ret < 0 ? errname(err) : "");
}

/* ---- ioctl helpers ------------------------------------------------------ */

struct vcpu {
	int fd;
	int idx;
	struct kvm_run *run;
};

struct vm {
	const char *name;
	int fd;
};

static int kvm_fd = -1;
static long run_mmap_size;

static int one_reg_get(int vcpu_fd, uint64_t id, void *addr, int *err)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)addr };
	int ret = ioctl(vcpu_fd, KVM_GET_ONE_REG, &r);

	*err = ret < 0 ? errno : 0;
	return ret < 0 ? -1 : ret;
}

static int one_reg_set(int vcpu_fd, uint64_t id, const void *addr, int *err)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)addr };
	int ret = ioctl(vcpu_fd, KVM_SET_ONE_REG, &r);

	*err = ret < 0 ? errno : 0;
	return ret < 0 ? -1 : ret;
}

/* KVM_GET_ONE_REG, recorded; returns the value read (SENTINEL on error) */
static uint64_t rec_get(struct vm *vm, struct vcpu *vc, const char *phase,
			const char *test, uint64_t id, int *okp)
{
	uint64_t v = SENTINEL;
	int err, ret = one_reg_get(vc->fd, id, &v, &err);

	begin("get");
	p_str("vm", vm->name);
	p_str("phase", phase);
	p_str("test", test);
	p_hex("id", id);
	p_hex("val", v);
	p_ret(ret, err);
	end();
	if (okp)
		*okp = ret == 0;
	return v;
}

/* KVM_SET_ONE_REG of val then a GET, recorded; returns the ioctl result and
 * the value read back in *readback */
static int rec_set(struct vm *vm, struct vcpu *vc, const char *phase,
		   const char *test, uint64_t id, uint64_t val, uint64_t *readback)
{
	uint64_t v = val, rb = SENTINEL;
	int err, rerr, ret = one_reg_set(vc->fd, id, &v, &err);
	int rret = one_reg_get(vc->fd, id, &rb, &rerr);

	begin("set");
	p_str("vm", vm->name);
	p_str("phase", phase);
	p_str("test", test);
	p_hex("id", id);
	p_hex("val", val);
	p_ret(ret, err);
	p_hex("readback", rb);
	p_str("readback_errno", rret < 0 ? errname(rerr) : "");
	end();
	if (readback)
		*readback = rb;
	return ret;
}

static int create_vm(struct vm *vm, const char *name)
{
	int fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	int err = errno;

	vm->name = name;
	vm->fd = fd;
	begin("create_vm");
	p_str("vm", name);
	p_ret(fd < 0 ? -1 : 0, err);
	end();
	return fd < 0 ? -1 : 0;
}

static int create_vcpu(struct vm *vm, struct vcpu *vc, int idx)
{
	int fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)idx);
	int err = errno;

	vc->fd = fd;
	vc->idx = idx;
	vc->run = NULL;
	begin("create_vcpu");
	p_str("vm", vm->name);
	p_int("idx", idx);
	p_ret(fd < 0 ? -1 : 0, err);
	end();
	if (fd < 0)
		return -1;
	if (run_mmap_size > 0) {
		void *m = mmap(NULL, (size_t)run_mmap_size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);
		if (m != MAP_FAILED)
			vc->run = m;
	}
	return 0;
}

static struct kvm_vcpu_init last_init;

/* KVM_ARM_PREFERRED_TARGET then KVM_ARM_VCPU_INIT, both recorded; `extra`
 * is ORed into features[0] (VM P: 1 << KVM_ARM_VCPU_PMU_V3) */
static int init_vcpu_features(struct vm *vm, struct vcpu *vc, int psci_0_2, uint32_t extra)
{
	struct kvm_vcpu_init init;
	int ret, err;

	memset(&init, 0, sizeof(init));
	ret = ioctl(vm->fd, KVM_ARM_PREFERRED_TARGET, &init);
	err = errno;
	begin("preferred_target");
	p_str("vm", vm->name);
	p_ret(ret < 0 ? -1 : 0, err);
	p_int("target", ret < 0 ? -1 : (long long)init.target);
	end();

	memset(init.features, 0, sizeof(init.features));
	if (psci_0_2)
		init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	init.features[0] |= extra;
	ret = ioctl(vc->fd, KVM_ARM_VCPU_INIT, &init);
	err = errno;
	begin("vcpu_init");
	p_str("vm", vm->name);
	p_int("idx", vc->idx);
	p_int("psci_0_2", psci_0_2 ? 1 : 0);
	p(",\"features0\":\"0x%x\"", init.features[0]);
	p_ret(ret < 0 ? -1 : 0, err);
	end();
	last_init = init;
	return ret < 0 ? -1 : 0;
}

static int init_vcpu(struct vm *vm, struct vcpu *vc, int psci_0_2)
{
	return init_vcpu_features(vm, vc, psci_0_2, 0);
}

/* ---- register list ----------------------------------------------------- */

#define MAX_FW 64

struct fwinfo {
	int n;
	uint64_t ids[MAX_FW];
	uint64_t dflt[MAX_FW];     /* value read by the `default` GETs */
	uint64_t accepted[MAX_FW]; /* bitmaps: extra bits the bitscan accepted */
};

static int id_class(uint64_t id) { return (int)((id & COPROC_MASK) >> COPROC_SHIFT); }
static int is_fw(uint64_t id) { return id_class(id) == CLASS_FW; }
static int is_bmap(uint64_t id) { return id_class(id) == CLASS_FW_BMAP; }

static int fw_listed(const struct fwinfo *fw, uint64_t id)
{
	for (int i = 0; i < fw->n; i++)
		if (fw->ids[i] == id)
			return 1;
	return 0;
}

static int fw_index(const struct fwinfo *fw, uint64_t id)
{
	for (int i = 0; i < fw->n; i++)
		if (fw->ids[i] == id)
			return i;
	return -1;
}

/* KVM_GET_REG_LIST twice (size probe, then the list); records reg_list_probe,
 * reg_list, reg_list_chunk*, fw_first_index, fw_reg_ids */
static void reg_list(struct vm *vm, struct vcpu *vc, struct fwinfo *fw)
{
	struct kvm_reg_list probe = { .n = 0 };
	struct kvm_reg_list *list;
	int ret, err;
	uint64_t n;
	int counts[0x1000];
	int first = -1;

	fw->n = 0;
	ret = ioctl(vc->fd, KVM_GET_REG_LIST, &probe);
	err = errno;
	begin("reg_list_probe");
	p_str("vm", vm->name);
	p_ret(ret < 0 ? -1 : 0, err);
	p_int("n", (long long)probe.n);
	end();

	n = probe.n;
	list = calloc(1, sizeof(*list) + (n + 1) * sizeof(uint64_t));
	if (!list)
		return;
	list->n = n;
	ret = ioctl(vc->fd, KVM_GET_REG_LIST, list);
	err = errno;
	if (ret < 0)
		list->n = 0;
	memset(counts, 0, sizeof(counts));
	for (uint64_t i = 0; i < list->n; i++)
		counts[id_class(list->reg[i])]++;

	begin("reg_list");
	p_str("vm", vm->name);
	p_int("ret", ret < 0 ? -1 : 0);
	if (ret < 0)
		p_str("errno", errname(err));
	p_int("total", (long long)list->n);
	p(",\"by_coproc\":{");
	for (int c = 0, k = 0; c < 0x1000; c++)
		if (counts[c])
			p("%s\"0x%04x\":%d", k++ ? "," : "", c, counts[c]);
	p("}");
	end();

	for (uint64_t s = 0; s < list->n; s += 24) {
		begin("reg_list_chunk");
		p_str("vm", vm->name);
		p_int("start", (long long)s);
		p(",\"ids\":[");
		for (uint64_t i = s; i < list->n && i < s + 24; i++)
			p("%s\"0x%016" PRIx64 "\"", i > s ? "," : "", list->reg[i]);
		p("]");
		end();
	}

	for (uint64_t i = 0; i < list->n; i++) {
		uint64_t id = list->reg[i];
		if (is_fw(id) || is_bmap(id)) {
			if (first < 0)
				first = (int)i;
			if (fw->n < MAX_FW)
				fw->ids[fw->n++] = id;
		}
	}
	begin("fw_first_index");
	p_str("vm", vm->name);
	p_int("index", first);
	end();

	begin("fw_reg_ids");
	p_str("vm", vm->name);
	p_int("count", fw->n);
	p(",\"ids\":[");
	for (int i = 0; i < fw->n; i++)
		p("%s\"0x%016" PRIx64 "\"", i ? "," : "", fw->ids[i]);
	p("]");
	end();
	free(list);
}

/* a valid value different from the bitmap's reset value: flip the lowest bit
 * the kernel lets us write (reset value | bits the bitscan accepted) */
static uint64_t bmap_different(const struct fwinfo *fw, int i)
{
	uint64_t mask = fw->dflt[i] | fw->accepted[i];

	if (!mask)
		mask = 1;
	return fw->dflt[i] ^ (mask & -mask);
}

/* ---- running a vCPU ------------------------------------------------------- */

static void *guest_mem;

/* one page of guest RAM holding `movz x0, #0x1000; str x0, [x0]; b .`; the
 * store hits unmapped guest address 0x1000 and exits to us as MMIO */
static int add_memslot(struct vm *vm, struct vcpu *vc)
{
	static const uint32_t code[] = { 0xd2820000, 0xf9000000, 0x14000000 };
	long page = sysconf(_SC_PAGESIZE);
	uint64_t gpa = 0;
	struct kvm_userspace_memory_region r;
	int ret, err;

	if (page <= 0)
		page = 4096;
	if (page > 0x1000)
		gpa = 0x100000; /* keep 0x1000 unmapped; pc is set below */
	guest_mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guest_mem == MAP_FAILED) {
		ret = -1;
		err = errno;
	} else {
		memcpy(guest_mem, code, sizeof(code));
		memset(&r, 0, sizeof(r));
		r.slot = 0;
		r.guest_phys_addr = gpa;
		r.memory_size = (uint64_t)page;
		r.userspace_addr = (uintptr_t)guest_mem;
		ret = ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r);
		err = errno;
	}
	begin("memslot");
	p_str("vm", vm->name);
	p_ret(ret < 0 ? -1 : 0, err);
	end();
	if (ret == 0 && gpa) {
		/* core register, not a firmware register: not recorded */
		uint64_t pc = gpa;
		int e;
		one_reg_set(vc->fd, CORE_PC_ID, &pc, &e);
	}
	return ret < 0 ? -1 : 0;
}

static int do_run(struct vm *vm, struct vcpu *vc, const char *label, int immediate_exit)
{
	int ret, err;

	if (vc->run)
		vc->run->immediate_exit = immediate_exit ? 1 : 0;
	ret = ioctl(vc->fd, KVM_RUN, 0);
	err = errno;
	if (vc->run)
		vc->run->immediate_exit = 0;
	begin("run");
	p_str("vm", vm->name);
	p_str("label", label);
	p_ret(ret < 0 ? -1 : 0, err);
	if (vc->run && (ret == 0 || err == EINTR)) {
		p_int("exit_reason", vc->run->exit_reason);
		if (ret == 0 && vc->run->exit_reason == KVM_EXIT_MMIO) {
			p_hex("mmio_addr", vc->run->mmio.phys_addr);
			p_int("mmio_is_write", vc->run->mmio.is_write);
			p_int("mmio_len", vc->run->mmio.len);
		}
	}
	end();
	return ret;
}

/* ---- the tests ------------------------------------------------------------ */

static const uint64_t psci_values[] = { 0x0, 0x1, 0x2, 0x10000, 0x10001, 0x10002, 0x10003, 0x20000 };
static const uint64_t wa_values_pre[] = { 0x0, 0x1, 0x2, 0x3, 0x4, 0x10, 0x12, 0x13 };
static const uint64_t wa_values_post[] = { 0x0, 0x1, 0x2, 0x3, 0x4 };
/* ids that no kernel has (yet): index 0x63, and the first ones after today's */
static const uint64_t nonexistent_ids[] = {
	FW_REG(0x63), BMAP_REG(0x63), FW_REG(4), FW_REG(5), BMAP_REG(4), BMAP_REG(5),
};
static const uint64_t wrong_size_ids[] = {
	REG_ARM64 | REG_SIZE_U32 | ((uint64_t)CLASS_FW_BMAP << COPROC_SHIFT),
	REG_ARM64 | REG_SIZE_U128 | ((uint64_t)CLASS_FW_BMAP << COPROC_SHIFT),
	REG_ARM64 | REG_SIZE_U32 | ((uint64_t)CLASS_FW << COPROC_SHIFT),
	REG_ARM64 | REG_SIZE_U128 | ((uint64_t)CLASS_FW << COPROC_SHIFT),
};
static const uint64_t badaddr_ids[] = {
	FW_REG(0), FW_REG(1), BMAP_REG(0), FW_REG(0x63), BMAP_REG(0x63),
	REG_ARM64 | REG_SIZE_U32 | ((uint64_t)CLASS_FW_BMAP << COPROC_SHIFT),
	REG_ARM64 | REG_SIZE_U128 | ((uint64_t)CLASS_FW << COPROC_SHIFT),
};
/* bitmap ids the probe asks about when KVM_GET_REG_LIST does not list them */
#define KNOWN_BMAPS 4

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void psci_writes(struct vm *vm, struct vcpu *vc, const char *phase,
			const struct fwinfo *fw)
{
	int i = fw_index(fw, PSCI_VERSION_ID);

	if (i < 0)
		return;
	for (size_t k = 0; k < N(psci_values); k++)
		rec_set(vm, vc, phase, "psci_version_write", PSCI_VERSION_ID, psci_values[k], NULL);
	rec_set(vm, vc, phase, "psci_version_restore_default", PSCI_VERSION_ID, fw->dflt[i], NULL);
}

/* workaround registers: every class 0x14 id other than PSCI_VERSION */
static void workaround_writes(struct vm *vm, struct vcpu *vc, const char *phase,
			      const char *test, const struct fwinfo *fw,
			      const uint64_t *vals, size_t nvals)
{
	for (int i = 0; i < fw->n; i++) {
		uint64_t id = fw->ids[i], rb = fw->dflt[i];
		if (!is_fw(id) || id == PSCI_VERSION_ID)
			continue;
		for (size_t k = 0; k < nvals; k++)
			rec_set(vm, vc, phase, test, id, vals[k], &rb);
		/* today's kernels never store these writes; if one ever does,
		 * put the reset value back (and record that) */
		if (rb != fw->dflt[i])
			rec_set(vm, vc, phase, "restore", id, fw->dflt[i], NULL);
	}
}

static void bitmap_tests(struct vm *vm, struct vcpu *vc, struct fwinfo *fw, int i)
{
	uint64_t id = fw->ids[i], d = fw->dflt[i];
	uint64_t acc = 0, rej = 0;
	char errs[128] = "";
	uint64_t v;
	int err;

	rec_set(vm, vc, "pre_run", "bitmap_set_bit63", id, d | BIT63, NULL);
	rec_set(vm, vc, "pre_run", "bitmap_write_zero", id, 0, NULL);
	rec_set(vm, vc, "pre_run", "bitmap_restore_default", id, d, NULL);

	/* every bit that is not in the reset value, set alone on top of it */
	for (int b = 0; b < 64; b++) {
		uint64_t bit = 1ULL << b;
		if (d & bit)
			continue;
		v = d | bit;
		if (one_reg_set(vc->fd, id, &v, &err) == 0) {
			acc |= bit;
			/* the write was stored: restore, and record it */
			rec_set(vm, vc, "pre_run", "restore", id, d, NULL);
		} else {
			const char *en = errname(err);
			rej |= bit;
			if (!strstr(errs, en) && strlen(errs) + strlen(en) + 2 < sizeof(errs)) {
				if (errs[0])
					strcat(errs, ",");
				strcat(errs, en);
			}
		}
	}
	fw->accepted[i] = acc;
	begin("bitmap_bitscan");
	p_str("vm", vm->name);
	p_hex("id", id);
	p_hex("default", d);
	p_hex("extra_bits_accepted", acc);
	p_hex("extra_bits_rejected", rej);
	p_str("reject_errnos", errs);
	end();

	/* every bit of the reset value cleared alone */
	for (int b = 0; b < 64; b++) {
		char test[32];
		if (!(d & (1ULL << b)))
			continue;
		snprintf(test, sizeof(test), "bitmap_clear_bit%d", b);
		rec_set(vm, vc, "pre_run", test, id, d & ~(1ULL << b), NULL);
	}
	/* the shared probe restored here without a record; we record it */
	if (d)
		rec_set(vm, vc, "pre_run", "restore", id, d, NULL);
	rec_get(vm, vc, "pre_run", "after_restore", id, NULL);
}

static void vm_main(struct fwinfo *fw)
{
	struct vm vm;
	struct vcpu v0, v1;

	if (create_vm(&vm, "A") < 0)
		return;
	if (create_vcpu(&vm, &v0, 0) < 0)
		return;
	init_vcpu(&vm, &v0, 1);
	reg_list(&vm, &v0, fw);

	for (int i = 0; i < fw->n; i++)
		fw->dflt[i] = rec_get(&vm, &v0, "pre_run", "default", fw->ids[i], NULL);
	for (int k = 0; k < KNOWN_BMAPS; k++)
		if (!fw_listed(fw, BMAP_REG(k)))
			rec_get(&vm, &v0, "pre_run", "bitmap_not_listed_get", BMAP_REG(k), NULL);
	for (int i = 0; i < fw->n; i++)
		rec_set(&vm, &v0, "pre_run", "same_value", fw->ids[i], fw->dflt[i], NULL);
	for (int i = 0; i < fw->n; i++)
		if (is_bmap(fw->ids[i]))
			bitmap_tests(&vm, &v0, fw, i);

	for (size_t k = 0; k < N(nonexistent_ids); k++) {
		rec_get(&vm, &v0, "pre_run", "nonexistent_get", nonexistent_ids[k], NULL);
		rec_set(&vm, &v0, "pre_run", "nonexistent_set", nonexistent_ids[k], 0, NULL);
	}

	for (size_t k = 0; k < N(wrong_size_ids); k++) {
		uint64_t buf[4] = { 0, 0, 0, 0 };
		uint64_t id = wrong_size_ids[k];
		int err, ret = one_reg_get(v0.fd, id, buf, &err);

		begin("get");
		p_str("vm", vm.name);
		p_str("phase", "pre_run");
		p_str("test", "wrong_size_get");
		p_hex("id", id);
		if (ret == 0)
			p_hex("val", buf[0]);
		p_ret(ret, err);
		end();

		memset(buf, 0, sizeof(buf));
		ret = one_reg_set(v0.fd, id, buf, &err);
		begin("set");
		p_str("vm", vm.name);
		p_str("phase", "pre_run");
		p_str("test", "wrong_size_set");
		p_hex("id", id);
		p_hex("val", 0);
		p_ret(ret, err);
		end();
	}

	for (size_t k = 0; k < N(badaddr_ids); k++) {
		uint64_t id = badaddr_ids[k];
		int gerr, serr;
		int gret = one_reg_get(v0.fd, id, NULL, &gerr);
		int sret = one_reg_set(v0.fd, id, NULL, &serr);

		begin("badaddr");
		p_str("vm", vm.name);
		p_hex("id", id);
		p_int("get_ret", gret);
		p_str("get_errno", gret < 0 ? errname(gerr) : "");
		p_int("set_ret", sret);
		p_str("set_errno", sret < 0 ? errname(serr) : "");
		end();
	}

	psci_writes(&vm, &v0, "pre_run", fw);
	workaround_writes(&vm, &v0, "pre_run", "workaround_write", fw, wa_values_pre, N(wa_values_pre));

	add_memslot(&vm, &v0);
	do_run(&vm, &v0, "novgic", 0);

	for (int i = 0; i < fw->n; i++) {
		uint64_t id = fw->ids[i];
		uint64_t cur = rec_get(&vm, &v0, "post_run", "post_run_value", id, NULL);

		rec_set(&vm, &v0, "post_run", "post_run_same", id, cur, NULL);
		if (!is_bmap(id))
			continue;
		rec_set(&vm, &v0, "post_run", "post_run_different", id, bmap_different(fw, i), NULL);
		rec_set(&vm, &v0, "post_run", "post_run_zero", id, 0, NULL);
		rec_set(&vm, &v0, "post_run", "post_run_bit63", id, fw->dflt[i] | BIT63, NULL);
		rec_set(&vm, &v0, "post_run", "post_run_same_again", id, fw->dflt[i], NULL);
	}
	psci_writes(&vm, &v0, "post_run", fw);
	workaround_writes(&vm, &v0, "post_run", "post_run_workaround_write", fw,
			  wa_values_post, N(wa_values_post));
	rec_set(&vm, &v0, "post_run", "post_run_nonexistent_set", FW_REG(0x63), 0, NULL);
	rec_set(&vm, &v0, "post_run", "post_run_nonexistent_set", BMAP_REG(0x63), 0, NULL);

	/* KVM_ARM_VCPU_INIT again after the run */
	if (fw_listed(fw, PSCI_VERSION_ID))
		rec_set(&vm, &v0, "post_run", "before_reinit_psci", PSCI_VERSION_ID, 0x10000, NULL);
	{
		struct kvm_vcpu_init init = last_init;
		int ret = ioctl(v0.fd, KVM_ARM_VCPU_INIT, &init);
		int err = errno;

		begin("vcpu_reinit");
		p_str("vm", vm.name);
		p_ret(ret < 0 ? -1 : 0, err);
		end();
	}
	for (int i = 0; i < fw->n; i++)
		rec_get(&vm, &v0, "post_run_reinit", "after_reinit_get", fw->ids[i], NULL);
	for (int i = 0; i < fw->n; i++) {
		uint64_t rb;
		if (!is_bmap(fw->ids[i]))
			continue;
		if (rec_set(&vm, &v0, "post_run_reinit", "after_reinit_different", fw->ids[i],
			    bmap_different(fw, i), &rb) == 0 && rb != fw->dflt[i])
			rec_set(&vm, &v0, "post_run_reinit", "restore", fw->ids[i], fw->dflt[i], NULL);
	}
	{
		int i = fw_index(fw, PSCI_VERSION_ID);
		if (i >= 0)
			rec_set(&vm, &v0, "post_run_reinit", "after_reinit_restore_psci",
				PSCI_VERSION_ID, fw->dflt[i], NULL);
	}

	/* a vCPU created after the VM ran */
	if (create_vcpu(&vm, &v1, 1) == 0) {
		init_vcpu(&vm, &v1, 1);
		for (int i = 0; i < fw->n; i++)
			rec_get(&vm, &v1, "post_run", "post_run_new_vcpu_get", fw->ids[i], NULL);
	}
}

/* VM I: KVM_RUN with immediate_exit=1 (EINTR, guest never entered) */
static void vm_immediate_exit(struct fwinfo *fw)
{
	struct vm vm;
	struct vcpu v0;

	if (create_vm(&vm, "I") < 0 || create_vcpu(&vm, &v0, 0) < 0)
		return;
	init_vcpu(&vm, &v0, 1);
	do_run(&vm, &v0, "immediate_exit", 1);
	for (int i = 0; i < fw->n; i++)
		if (is_bmap(fw->ids[i]))
			rec_set(&vm, &v0, "after_immediate_exit_run", "different_after_immediate_exit",
				fw->ids[i], bmap_different(fw, i), NULL);
}

/* VM U: KVM_RUN on a vCPU that was never initialised (ENOEXEC) */
static void vm_uninit_run(struct fwinfo *fw)
{
	struct vm vm;
	struct vcpu v0, v1;

	if (create_vm(&vm, "U") < 0 || create_vcpu(&vm, &v0, 0) < 0 ||
	    create_vcpu(&vm, &v1, 1) < 0)
		return;
	init_vcpu(&vm, &v1, 1);
	do_run(&vm, &v0, "uninit_vcpu", 0);
	for (int i = 0; i < fw->n; i++)
		if (is_bmap(fw->ids[i]))
			rec_set(&vm, &v1, "after_failed_run_of_uninit_vcpu", "different_after_uninit_run",
				fw->ids[i], bmap_different(fw, i), NULL);
}

/* VM N: vCPU without the PSCI 0.2 feature */
static void vm_no_psci02(void)
{
	struct vm vm;
	struct vcpu v0;
	struct fwinfo fw;

	memset(&fw, 0, sizeof(fw));
	if (create_vm(&vm, "N") < 0 || create_vcpu(&vm, &v0, 0) < 0)
		return;
	init_vcpu(&vm, &v0, 0);
	reg_list(&vm, &v0, &fw);
	for (int i = 0; i < fw.n; i++)
		fw.dflt[i] = rec_get(&vm, &v0, "pre_run", "default", fw.ids[i], NULL);
	psci_writes(&vm, &v0, "pre_run", &fw);
}

/* VM P (only with --pmu / kvm_probe.pmu=1 on the kernel command line): vCPU
 * with PSCI 0.2 and the PMUv3 feature (KVM_ARM_VCPU_PMU_V3, features0 bit 3).
 * Only the register list and the `default` GETs: the PMU itself is never
 * initialised (KVM_ARM_VCPU_PMU_V3_INIT) and the vCPU never runs. */
static void vm_pmu(void)
{
	struct vm vm;
	struct vcpu v0;
	struct fwinfo fw;

	memset(&fw, 0, sizeof(fw));
	if (create_vm(&vm, "P") < 0 || create_vcpu(&vm, &v0, 0) < 0)
		return;
	if (init_vcpu_features(&vm, &v0, 1, 1u << KVM_ARM_VCPU_PMU_V3) < 0)
		return;
	reg_list(&vm, &v0, &fw);
	for (int i = 0; i < fw.n; i++)
		fw.dflt[i] = rec_get(&vm, &v0, "pre_run", "default", fw.ids[i], NULL);
}

/* VM C: visibility of writes across vCPUs, and the per-VM run lock */
static void vm_cross(struct fwinfo *fw)
{
	struct vm vm;
	struct vcpu v5, v0, v1, v2;

	if (create_vm(&vm, "C") < 0)
		return;
	if (create_vcpu(&vm, &v5, 5) == 0) {
		rec_get(&vm, &v5, "pre_run", "uninit_vcpu_get", BMAP_REG(0), NULL);
		rec_set(&vm, &v5, "pre_run", "uninit_vcpu_set", BMAP_REG(0), 0, NULL);
	}
	if (create_vcpu(&vm, &v0, 0) < 0)
		return;
	init_vcpu(&vm, &v0, 1);
	if (create_vcpu(&vm, &v1, 1) < 0)
		return;
	init_vcpu(&vm, &v1, 1);
	for (int i = 0; i < fw->n; i++) {
		if (!is_bmap(fw->ids[i]))
			continue;
		rec_set(&vm, &v0, "pre_run", "cross_write_vcpu0", fw->ids[i], bmap_different(fw, i), NULL);
		rec_get(&vm, &v1, "pre_run", "cross_read_vcpu1", fw->ids[i], NULL);
	}
	if (fw_listed(fw, PSCI_VERSION_ID)) {
		rec_set(&vm, &v0, "pre_run", "cross_write_vcpu0_psci", PSCI_VERSION_ID, 0x10000, NULL);
		rec_get(&vm, &v1, "pre_run", "cross_read_vcpu1_psci", PSCI_VERSION_ID, NULL);
	}
	if (create_vcpu(&vm, &v2, 2) == 0) {
		init_vcpu(&vm, &v2, 1);
		for (int i = 0; i < fw->n; i++)
			rec_get(&vm, &v2, "pre_run", "cross_read_vcpu2_created_after", fw->ids[i], NULL);
	}
	add_memslot(&vm, &v0);
	do_run(&vm, &v0, "novgic", 0);
	for (int i = 0; i < fw->n; i++) {
		if (!is_bmap(fw->ids[i]))
			continue;
		rec_set(&vm, &v1, "post_run_vcpu0", "vcpu1_same_after_vcpu0_ran", fw->ids[i],
			bmap_different(fw, i), NULL);
		rec_set(&vm, &v1, "post_run_vcpu0", "vcpu1_different_after_vcpu0_ran", fw->ids[i],
			fw->dflt[i], NULL);
	}
}

/* ---- pid 1 plumbing ---------------------------------------------------------- */

static void load_modules(void)
{
	/* optional: /modules/NN-name.ko, loaded in name order (the initramfs
	 * builder names them in dependency order) */
	struct dirent **names;
	int n = scandir("/modules", &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		char path[512];
		int fd;

		if (names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "/modules/%s", names[i]->d_name);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				syscall(SYS_finit_module, fd, "", 0);
				close(fd);
			}
		}
		free(names[i]);
	}
	if (n > 0)
		free(names);
}

static void setup_init(void)
{
	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	if (fcntl(1, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR | O_NOCTTY);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	}
	/* keep kernel messages off the console so they cannot interleave with
	 * records (SYSLOG_ACTION_CONSOLE_LEVEL = 8) */
	syscall(SYS_syslog, 8, NULL, 1);
	load_modules();
	if (access("/dev/kvm", F_OK) != 0)
		mknod("/dev/kvm", S_IFCHR | 0600, makedev(10, 232));
}

int main(int argc, char **argv)
{
	int is_init = getpid() == 1;
	struct utsname u;
	struct fwinfo fw;
	char cmdline[4096] = "";
	int fd, ver, pmu = 0;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--pmu") == 0)
			pmu = 1;
	if (is_init)
		setup_init();
	out_fd = 1;

	if (uname(&u) == 0) {
		begin("start");
		p_str("release", u.release);
		p_str("version", u.version);
		p_str("machine", u.machine);
		end();
	}
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
		if (n > 0) {
			cmdline[n] = 0;
			if (cmdline[n - 1] == '\n')
				cmdline[n - 1] = 0;
		}
		close(fd);
	}
	begin("cmdline");
	p_str("cmdline", cmdline);
	end();
	for (char *tok = strtok(cmdline, " "); tok; tok = strtok(NULL, " "))
		if (strcmp(tok, "kvm_probe.pmu=1") == 0)
			pmu = 1;

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	begin("open_kvm");
	p_ret(kvm_fd < 0 ? -1 : 0, errno);
	end();
	if (kvm_fd >= 0) {
		ver = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
		begin("api_version");
		p_int("val", ver);
		end();

		begin("caps");
		p(",\"caps\":{");
		for (size_t i = 0; i < N(caps_list); i++) {
			int r = ioctl(kvm_fd, KVM_CHECK_EXTENSION, caps_list[i].nr);
			p("%s\"%s\":%d", i ? "," : "", caps_list[i].name, r < 0 ? -1 : r);
		}
		p("}");
		end();

		run_mmap_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);

		memset(&fw, 0, sizeof(fw));
		vm_main(&fw);
		vm_immediate_exit(&fw);
		vm_uninit_run(&fw);
		vm_no_psci02();
		vm_cross(&fw);
		if (pmu)
			vm_pmu();
	}
	begin("done");
	end();

	if (is_init) {
		sync();
		reboot(RB_POWER_OFF);
		for (;;)
			pause();
	}
	return kvm_fd < 0 ? 1 : 0;
}
