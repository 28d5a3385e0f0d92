/*
 * <ringlet/args.h>: `key=value` words in argv, the way the benchmark harness
 * (../shared/bench, "Protocol for a target") and Ringlet's own benchmark apps
 * pass options: `bench=blk-rand bench_secs=3 bench_qd=32`.
 */
#ifndef RINGLET_ARGS_H
#define RINGLET_ARGS_H

#include <stdlib.h>
#include <string.h>

/* The value of the first argv word `key=...` (argv[0] is not looked at), or NULL. */
static inline const char *ringlet_arg(int argc, char **argv, const char *key)
{
	size_t k = strlen(key);
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=')
			return argv[i] + k + 1;
	return NULL;
}

/* The value of `key=...` as a positive number; def when it is missing, not a
 * number, or not above 0. */
static inline double ringlet_arg_num(int argc, char **argv, const char *key, double def)
{
	const char *v = ringlet_arg(argc, argv, key);
	char *end;
	double d = v ? strtod(v, &end) : def;
	return v && (end == v || *end || d <= 0) ? def : d;
}

#endif
