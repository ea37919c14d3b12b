#ifndef FTQ_CZSTD_SHIM_H
#define FTQ_CZSTD_SHIM_H
#include <zstd.h>
#endif
