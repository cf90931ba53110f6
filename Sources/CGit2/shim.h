#ifndef YTEMPIRE_CGIT2_SHIM_H
#define YTEMPIRE_CGIT2_SHIM_H
#define GIT_DEPRECATE_HARD
#include <git2.h>
#include <spawn.h>

/* git_libgit2_opts is variadic, which Swift cannot call: one typed wrapper per option used. */
static inline int ytempire_git_set_ssl_cert_locations(const char *file, const char *path) {
    return git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, file, path);
}

/* glibc >= 2.34: close every descriptor >= from in a posix_spawn child. Declared here
   because <spawn.h> only exposes it under _GNU_SOURCE / __USE_MISC. */
#if defined(__GLIBC__)
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int);
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *, const char *);
static inline int ytempire_spawn_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
/* glibc >= 2.29: the child changes to `path` before exec. */
static inline int ytempire_spawn_chdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}
#else
static inline int ytempire_spawn_closefrom(posix_spawn_file_actions_t *actions, int from) {
    (void)actions; (void)from;
    return 0;
}
static inline int ytempire_spawn_chdir(posix_spawn_file_actions_t *actions, const char *path) {
    (void)actions; (void)path;
    return -1;
}
#endif
#endif
