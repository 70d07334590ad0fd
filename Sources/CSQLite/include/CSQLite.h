#ifndef CAIRN_CSQLITE_H
#define CAIRN_CSQLITE_H

/* What Swift cannot call of SQLite's C API directly (sqlite3_config is variadic). */

/* Turns off SQLite's process-wide memory statistics, which every allocation of every connection
   updates under one global mutex. Effective only before SQLite's first connection in the
   process; returns SQLite's result code (SQLITE_MISUSE when it is too late). */
int cairn_sqlite_disable_memory_statistics(void);

#endif
