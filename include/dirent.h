/*
 * <dirent.h>: reading directories (POSIX), for the filesystems mounted with
 * <ringlet/fs.h> or the mount= kernel option. newlib's own <dirent.h> is a
 * stub for systems without directories; this one takes its place.
 *
 *	DIR *d = opendir("/www");
 *	for (struct dirent *e; d && (e = readdir(d)); )
 *		printf("%s%s\n", e->d_name, e->d_type == DT_DIR ? "/" : "");
 *	closedir(d);
 */
#ifndef RINGLET_DIRENT_H
#define RINGLET_DIRENT_H

#include <stdint.h>
#include <sys/types.h>

#define DT_UNKNOWN 0
#define DT_DIR     4
#define DT_REG     8

struct dirent {
	ino_t d_ino;
	unsigned char d_type; /* DT_REG, DT_DIR */
	char d_name[256];
};

typedef struct ringlet_dir DIR;

DIR *opendir(const char *path);
DIR *fdopendir(int fd);
struct dirent *readdir(DIR *d);
void rewinddir(DIR *d);
int closedir(DIR *d);
int dirfd(DIR *d);

#endif
