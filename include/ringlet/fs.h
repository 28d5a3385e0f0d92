/*
 * <ringlet/fs.h>: mounting a tar archive on a disk as a read-only directory.
 *
 * A disk made with the ordinary tar (ustar, GNU and pax long names) is
 * indexed once when it is mounted; its files are then read with open(),
 * read(), pread(), lseek(), fstat(), stat(), and its directories listed with
 * opendir()/readdir() (<dirent.h>). The kernel option `mount=/www:vda` does
 * the same before main() runs.
 *
 *	if (!ringlet_mounted("/www") && ringlet_mount_tar("/www", "vda") < 0) ...
 *
 * Returns 0 or a negative errno: -ENODEV no such disk, -EBUSY something is
 * mounted there already, -EINVAL not a tar archive (or a broken or hostile
 * one: the boot log says why), -E2BIG too many entries, -ENOMEM, -EIO.
 */
#ifndef RINGLET_FS_H
#define RINGLET_FS_H

#include <stdbool.h>

/* disk: "vda", "vdb", ... (or "/dev/vda"); dir: an absolute path. */
int ringlet_mount_tar(const char *dir, const char *disk);
/* Whether a filesystem is mounted at exactly dir. */
bool ringlet_mounted(const char *dir);

#endif
