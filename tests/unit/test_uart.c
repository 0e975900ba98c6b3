/*
 * Unit tests of the 8250 UART (vmm/devices/uart.c) through the port bus, as
 * Linux's 8250 driver drives it: the "transmitter empty" interrupt raised
 * when enabled and acknowledged by reading IIR, output line by line on
 * stdout, received bytes from stdin (a pipe here) with LSR.DR and the
 * received-data interrupt ahead of THRE, and the divisor latch. The IRQ line
 * follows IIR; without a KVM VM only IIR itself can be watched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "vmm/devices/uart.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/loop.h"

#define COM1 0x3f8

static struct vm vm;

static uint8_t rd(int reg)
{
	uint8_t v = 0xee;

	assert_int_equal(io_bus_dispatch(&vm.pio, COM1 + reg, &v, 1, false), 0);
	return v;
}

static void wr(int reg, uint8_t v)
{
	assert_int_equal(io_bus_dispatch(&vm.pio, COM1 + reg, &v, 1, true), 0);
}

static void stop_loop(void *opaque, uint32_t events)
{
	(void)events;
	loop_stop(opaque);
}

/* Lets the main loop read what is waiting on stdin. */
static void serve_stdin(void)
{
	int t = loop_add_timer(vm.loop, 50 * 1000 * 1000, stop_loop, vm.loop);

	assert_true(t >= 0);
	loop_run(vm.loop);
	loop_del(vm.loop, t);
}

static void test_uart_both_directions(void **state)
{
	int in[2], out[2], saved_in = dup(0), saved_out = dup(1);
	char got[16] = "";

	(void)state;
	vm.vm_fd = -1;
	vm.pio.name = "pio";
	vm.loop = loop_new();
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	dup2(in[0], 0);
	assert_int_equal(uart_init(&vm), 0);

	assert_int_equal(rd(5), 0x60);              /* THRE | TEMT, no data */
	assert_int_equal(rd(2), 0x01);              /* no interrupt */
	wr(1, 0x02);                                /* enable THRI: THR is empty */
	assert_int_equal(rd(2), 0x02);
	assert_int_equal(rd(2), 0x01);              /* reading IIR acknowledged it */

	fflush(stdout);
	dup2(out[1], 1);
	wr(0, 'h');
	assert_int_equal(rd(2), 0x02);              /* sent at once: empty again */
	wr(0, 'i');
	wr(0, '\n');
	dup2(saved_out, 1);
	assert_int_equal(read(out[0], got, sizeof(got) - 1), 3);
	assert_string_equal(got, "hi\n");

	assert_int_equal(write(in[1], "ab", 2), 2);
	serve_stdin();
	assert_int_equal(rd(5), 0x61);              /* data ready */
	wr(1, 0x03);                                /* RDI and THRI */
	assert_int_equal(rd(2), 0x04);              /* received data first */
	assert_int_equal(rd(0), 'a');
	assert_int_equal(rd(0), 'b');
	assert_int_equal(rd(5), 0x60);
	assert_int_equal(rd(2), 0x02);

	wr(3, 0x83);                                /* DLAB: divisor 12 = 9600 baud */
	wr(0, 12);
	wr(1, 0);
	assert_int_equal(rd(0), 12);
	assert_int_equal(rd(1), 0);
	wr(3, 0x03);
	assert_int_equal(rd(1), 0x03);
	assert_int_equal(rd(3), 0x03);

	close(in[1]);                               /* end of input: no longer watched */
	serve_stdin();
	uart_destroy(&vm);
	io_bus_free(&vm.pio);
	loop_free(vm.loop);
	dup2(saved_in, 0);
	close(in[0]), close(out[0]), close(out[1]), close(saved_in), close(saved_out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uart_both_directions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
