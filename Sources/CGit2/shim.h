#ifndef YTEMPIRE_CGIT2_SHIM_H
#define YTEMPIRE_CGIT2_SHIM_H
#define GIT_DEPRECATE_HARD
#include <git2.h>
#include <spawn.h>

/* glibc >= 2.34: close every descriptor >= from in a posix_spawn child. Declared here
   because <spawn.h> only exposes it under _GNU_SOURCE / __USE_MISC. */
#if defined(__GLIBC__)
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int);
static inline int ytempire_spawn_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
#else
static inline int ytempire_spawn_closefrom(posix_spawn_file_actions_t *actions, int from) {
    (void)actions; (void)from;
    return 0;
}
#endif
#endif
