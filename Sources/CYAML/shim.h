#ifndef YTEMPIRE_CYAML_SHIM_H
#define YTEMPIRE_CYAML_SHIM_H
#include <yaml.h>
#endif
