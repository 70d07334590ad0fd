#ifndef CFUSE3_SHIM_H
#define CFUSE3_SHIM_H

// libfuse 3.14's API level. At 312 and above fuse_session_loop_mt and fuse_parse_cmdline are
// plain functions (below it they are macros that Swift cannot call).
#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <linux/falloc.h>
#include <errno.h>

// renameat2 flags: glibc defines them only in <stdio.h> behind _GNU_SOURCE and Swift does not
// import them reliably, so name them here (values from include/uapi/linux/fs.h).
static const unsigned int CFUSE3_RENAME_NOREPLACE = 1;
static const unsigned int CFUSE3_RENAME_EXCHANGE = 2;

static const int CFUSE3_FALLOC_FL_KEEP_SIZE = FALLOC_FL_KEEP_SIZE;
static const int CFUSE3_FALLOC_FL_PUNCH_HOLE = FALLOC_FL_PUNCH_HOLE;
static const int CFUSE3_FALLOC_FL_ZERO_RANGE = FALLOC_FL_ZERO_RANGE;

// lseek whence values (also behind _GNU_SOURCE, which the Glibc module was built without).
static const int CFUSE3_SEEK_DATA = 3;
static const int CFUSE3_SEEK_HOLE = 4;

#endif
