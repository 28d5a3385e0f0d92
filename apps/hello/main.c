/*
 * apps/hello: the smallest useful Ringlet application.
 *
 * Prints a greeting, its arguments and how long the guest took to get here,
 * then ends the guest with the status given by `--exit N` (0 by default).
 * Try it: make run APP=hello ARGS="a 'b c' --exit 3"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ringlet/ringlet.h>

int main(int argc, char **argv)
{
	int status = 0;

	printf("Hello from Ringlet!\n");
	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=[%s]\n", i, argv[i]);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--exit") != 0)
			continue;
		char *end;
		if (i + 1 >= argc || (status = (int)strtol(argv[i + 1], &end, 0), *end != '\0')) {
			fprintf(stderr, "hello: --exit needs a number\n");
			return 2;
		}
	}

	/* CLOCK_MONOTONIC counts from the guest's first instruction. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t main_us = ringlet_main_ns() / 1000;
	printf("boot to main: %lu.%03lu ms, now %ld.%06ld s since boot\n", (unsigned long)(main_us / 1000),
	       (unsigned long)(main_us % 1000), (long)now.tv_sec, now.tv_nsec / 1000);
	printf("exit status: %d\n", status);
	return status;
}
