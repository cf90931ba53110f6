#ifndef YTEMPIRE_CGIT2_SHIM_H
#define YTEMPIRE_CGIT2_SHIM_H
#define GIT_DEPRECATE_HARD
#include <git2.h>
#endif
