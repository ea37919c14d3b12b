#ifndef FTQ_COPENSSL_SHIM_H
#define FTQ_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#endif
