/*
 * Fuzz target: the QMP monitor as a client reaches it. Each input is the
 * byte stream of one client connection: it connects to the real server
 * (vmm/qmp/server.c on a unix socket, served by the real event loop) of a
 * VM without KVM whose registry holds every command minivmm registers
 * (the machine's, the memory manager's, the balloon's with the real
 * device, the protocol's and the QOM router's), sends the input, closes
 * its sending side and reads until the server hangs up. So the stream
 * parser (partial values, syntax errors and resynchronisation), the
 * request envelope, capabilities negotiation, dispatch, worker commands
 * and every handler's argument checks run on fuzzed input.
 *
 * Checked besides the sanitizers: every line the server sends is one JSON
 * object, and the server closes the connection once the input is consumed.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "balloon/balloon.h"
#include "mm/manager.h"
#include "tests/fuzz/common.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/loop.h"
#include "vmm/machine.h"

#define RAM (16ull << 20)

static struct vm *vm;
static char path[108];
static char *out;
static size_t out_len, out_cap;

static void remove_socket(void)
{
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	fz_quiet();
	vm = fz_vm_new(RAM, "stats-period=0", true);
	snprintf(path, sizeof(path), "/tmp/minivmm-fuzz-qmp-%d.sock", (int)getpid());
	if (qmp_server_create(vm, path, err, sizeof(err))) {
		fprintf(stderr, "fuzz_qmp: %s\n", err);
		abort();
	}
	atexit(remove_socket);
	return 0;
}

static void take_output(int fd, bool *eof)
{
	for (;;) {
		if (out_cap - out_len < 4096) {
			out_cap = out_cap ? out_cap * 2 : 65536;
			out = realloc(out, out_cap);
			if (!out)
				abort();
		}
		ssize_t n = recv(fd, out + out_len, out_cap - out_len, MSG_DONTWAIT);
		if (n > 0) {
			out_len += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			*eof = true;
		return;
	}
}

/* Every reply, event and greeting is one JSON object per line. */
static void check_output(void)
{
	size_t off = 0;

	while (off < out_len) {
		char *nl = memchr(out + off, '\n', out_len - off);
		if (!nl) {
			fprintf(stderr, "fuzz_qmp: output ends without a newline\n");
			abort();
		}
		json_error_t jerr;
		json_t *msg = json_loadb(out + off, (size_t)(nl - (out + off)), 0, &jerr);
		if (!json_is_object(msg)) {
			fprintf(stderr, "fuzz_qmp: server sent a line that is not a JSON object: %.*s\n",
				(int)(nl - (out + off)), out + off);
			abort();
		}
		json_decref(msg);
		off = (size_t)(nl - out) + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t sent = 0;
	bool eof = false;
	char err[256];

	if (fd < 0)
		abort();
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		abort();
	out_len = 0;
	/* inputs are at most -max_len (4 KiB by default): the socket buffer
	 * takes them whole, but serve the loop while sending all the same */
	while (sent < size) {
		ssize_t n = send(fd, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		loop_run_once(vm->loop, 0);
		take_output(fd, &eof);
	}
	shutdown(fd, SHUT_WR);
	/* the server must answer what it can and hang up; 10 s is a hang */
	for (int i = 0; !eof; i++) {
		if (i > 10000) {
			fprintf(stderr, "fuzz_qmp: the server did not close the connection\n");
			abort();
		}
		loop_run_once(vm->loop, 1);
		take_output(fd, &eof);
	}
	close(fd);
	/* events emitted meanwhile (BALLOON_CHANGE, ...) leave the loop */
	loop_run_once(vm->loop, 0);
	check_output();

	/* what the input changed goes back to the start: run state, balloon
	 * target and stats timer, resident target */
	if (vm_paused(vm))
		vm_resume(vm);
	atomic_store(&vm->state, VM_RUNNING);
	atomic_store(&vm->exit_status, 0);
	balloon_set_target(vm->balloon, RAM, err, sizeof(err));
	balloon_set_stats_period(vm->balloon, 0);
	mmgr_set_resident_target(vm->mgr, 0, err, sizeof(err));
	return 0;
}
