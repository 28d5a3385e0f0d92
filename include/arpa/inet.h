/*
 * <arpa/inet.h>: address conversions (POSIX.1-2017, XBD <arpa/inet.h>);
 * kernel/net/resolv.c.
 */
#ifndef _ARPA_INET_H
#define _ARPA_INET_H

#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 on success, 0 when src is not an address of that family, -1 with
 * errno EAFNOSUPPORT for a family other than AF_INET or AF_INET6. */
int inet_pton(int af, const char *src, void *dst);
/* dst, or NULL with errno ENOSPC when size is too small. */
const char *inet_ntop(int af, const void *src, char *dst, socklen_t size);
in_addr_t inet_addr(const char *cp);
int inet_aton(const char *cp, struct in_addr *inp);
char *inet_ntoa(struct in_addr in); /* a static buffer */

#ifdef __cplusplus
}
#endif

#endif
